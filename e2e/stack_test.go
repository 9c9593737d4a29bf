package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/launch"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/natsserver/natstest"
)

// The repository every test builds. The dot in its name travels through
// NATS subjects, key-value keys and workspace paths.
const (
	owner    = "acme"
	repoName = "widgets.go"
	secret   = "e2e-webhook-secret"
)

// waitLimit bounds every wait for statuses: far above what a healthy run
// needs, so only a lost or stuck job reaches it.
const waitLimit = 2 * time.Minute

// binDir holds the receiver and worker built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "yci-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := launch.Build(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// shortAckWait is the ack wait of tests that crash a worker: a killed
// worker's job comes back after it, instead of the default 20 seconds.
const shortAckWait = 2 * time.Second

// natsPassword is the password of an externalWithPassword stack's server,
// which tests look for where it must not be.
const natsPassword = "nats-password-7Q2xV9"

// natsMode says which JetStream a stack runs on.
type natsMode int

const (
	// inProcess: a nats-server started in the test process, with file
	// storage, that the test may shut down and restart.
	inProcess natsMode = iota
	// embedded: no NATS_URL; the receiver runs the embedded JetStream
	// and workers join it, as on a box configured with nothing.
	embedded
	// external: Debian's nats-server binary (2.9.10), the oldest server
	// supported.
	external
	// externalWithPassword: the same, requiring a user and password of
	// every client, as deploy/nats/single.conf does; NATS_URL carries them.
	externalWithPassword
	// cluster: three Debian nats-server processes routed into one
	// JetStream cluster, every process keeping three replicas
	// (YCI_NATS_REPLICAS=3), as a team running a box per node does.
	cluster
)

type stackOptions struct {
	nats natsMode
	// shortAckWait makes crashed workers' jobs come back soon.
	shortAckWait bool
	// noHook leaves webhooks to the test (fakegithub.Deliver) instead of
	// having the stand-in deliver them.
	noHook bool
	// sandbox runs tests in the workers' default sandbox (bwrap); other
	// stacks run them unconfined (YCI_SANDBOX=none), so that their scripts
	// can reach the marks directory.
	sandbox bool
	// dir, when set, holds the whole stack (workspaces, the JetStream
	// store, GitHub's repositories) in place of a temporary directory:
	// a small filesystem the test mounted.
	dir string
}

// stack is one YourCI: the GitHub stand-in with a repository, a JetStream,
// a receiver, and the workers the test starts. Its processes are stopped
// and, when the test failed, their output printed, at cleanup.
type stack struct {
	tb    testing.TB
	ctx   context.Context
	dir   string
	marks string
	gh    *fakegithub.Server
	cfg   launch.Config
	recv  *launch.Receiver

	natsStore string
	natsPort  int
	nats      *natsserver.Server // only for inProcess
	cluster   *natstest.Cluster  // only for cluster

	mu    sync.Mutex
	procs []*launch.Process
}

func newStack(tb testing.TB, opts stackOptions) *stack {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 4*time.Minute)
	tb.Cleanup(cancel)
	dir := opts.dir
	if dir == "" {
		dir = tb.TempDir()
	}
	s := &stack{tb: tb, ctx: ctx, dir: dir, marks: filepath.Join(dir, "marks"), natsStore: filepath.Join(dir, "jetstream")}
	for _, d := range []string{s.marks, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	gh, err := fakegithub.New(filepath.Join(dir, "github"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(gh.Close)
	s.gh = gh
	s.cfg = launch.Config{
		Bin: binDir, Dir: filepath.Join(dir, "procs"), GitHubURL: gh.URL(), Token: gh.Token(),
		WebhookSecret: secret,
		// Temporary files of the processes and of what they start stay in
		// the test's directory.
		Env: []string{"TMPDIR=" + filepath.Join(dir, "tmp"),
			// Every state is sent, so tests can check whole histories;
			// the write budget's own tests hold states back.
			"YCI_STATUS_HOLD=-1s"},
	}
	if opts.shortAckWait {
		s.cfg.Env = append(s.cfg.Env, "YCI_ACK_WAIT="+shortAckWait.String())
	}
	if !opts.sandbox {
		s.cfg.Env = append(s.cfg.Env, "YCI_SANDBOX=none")
	}
	s.startNATS(opts.nats)
	tb.Cleanup(s.cleanup)
	recv, err := s.cfg.StartReceiver(ctx, "receiver")
	if err != nil {
		tb.Fatal(err)
	}
	s.track(recv.Process)
	s.recv = recv
	s.cfg.NATSPort = recv.NATSPort
	if _, err := gh.CreateRepo(owner, repoName); err != nil {
		tb.Fatal(err)
	}
	if !opts.noHook {
		gh.AddHook(recv.WebhookURL, secret)
	}
	return s
}

// startNATS readies the JetStream of mode; cleanups it registers run after
// the processes are stopped.
func (s *stack) startNATS(mode natsMode) {
	switch mode {
	case inProcess:
		srv, err := natsserver.Start(s.ctx, natsserver.Options{StoreDir: s.natsStore, Port: natsserver.RandomPort})
		if err != nil {
			s.tb.Fatal(err)
		}
		s.nats, s.natsPort = srv, srv.Port()
		s.cfg.NATSURL = srv.URL()
		s.tb.Cleanup(func() { s.nats.Shutdown() })
	case external, externalWithPassword:
		opts := natsserver.Options{StoreDir: s.natsStore, Port: natsserver.RandomPort}
		if mode == externalWithPassword {
			opts.Credentials = &natsserver.Credentials{User: "yourci", Password: natsPassword}
		}
		srv := natstest.StartExternal(s.tb, opts)
		s.cfg.NATSURL, s.natsPort = srv.URL(), srv.Port()
	case cluster:
		s.cluster = natstest.StartCluster(s.tb, s.natsStore, 3)
		s.cfg.NATSURL = s.cluster.URL()
		s.cfg.Env = append(s.cfg.Env, "YCI_NATS_REPLICAS=3")
	case embedded:
		// The receiver picks the port (StartReceiver), and the workers
		// join it there.
	}
}

// restartNATS shuts the in-process server down and starts it again on the
// same port and store, as a NATS restart does, after pause.
func (s *stack) restartNATS(pause time.Duration) {
	s.tb.Helper()
	s.nats.Shutdown()
	time.Sleep(pause) // the outage is the behaviour under test: NATS stays away this long
	srv, err := natsserver.Start(s.ctx, natsserver.Options{StoreDir: s.natsStore, Port: s.natsPort})
	if err != nil {
		s.tb.Fatalf("restarting NATS on port %d: %v", s.natsPort, err)
	}
	s.nats = srv
}

func (s *stack) track(p *launch.Process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs = append(s.procs, p)
}

// worker is a running worker and the URL its workspace is served under.
type worker struct {
	*launch.Worker
	name     string
	httpRoot string
}

// startWorker starts a worker in the workspace procs/<name> (the same
// workspace again when name is reused) with HTTP_ROOT pointing at a log
// server for that workspace. env adds to its environment.
func (s *stack) startWorker(name string, env ...string) *worker {
	s.tb.Helper()
	root := s.serveLogs(filepath.Join(s.cfg.Dir, name))
	w, err := s.cfg.StartWorker(s.ctx, name, root, env...)
	if err != nil {
		s.tb.Fatal(err)
	}
	s.track(w.Process)
	return &worker{Worker: w, name: name, httpRoot: root}
}

// serveLogs serves a workspace's files over HTTP, as nginx does in
// production, and returns the root URL.
func (s *stack) serveLogs(workspace string) string {
	s.tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(workspace)), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l) // returns http.ErrServerClosed at cleanup
	s.tb.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/"
}

// cleanup stops every process, lets test scripts a killed worker left
// behind finish, and prints the processes' output when the test failed
// (or always, with YCI_E2E_OUTPUT=1).
func (s *stack) cleanup() {
	s.mu.Lock()
	procs := append([]*launch.Process(nil), s.procs...)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range procs {
		select {
		case <-p.Done():
		default:
			if err := p.Stop(ctx); err != nil {
				s.tb.Logf("stopping %s: %v", p.Name, err)
			}
		}
	}
	s.release()
	s.waitOrphans()
	if s.tb.Failed() || os.Getenv("YCI_E2E_OUTPUT") == "1" {
		for _, p := range procs {
			s.tb.Logf("---- output of %s ----\n%s", p.Name, tail(p.Output(), 30000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// openPull commits files to a branch and opens a pull request from it
// (the stand-in delivers the opened webhook), returning its number and
// head sha.
func (s *stack) openPull(files map[string]string) (int, string) {
	s.tb.Helper()
	if _, err := s.gh.Commit(owner, repoName, "main", map[string]string{"README.md": "widgets\n"}, "Initial commit"); err != nil {
		s.tb.Fatal(err)
	}
	if _, err := s.gh.Commit(owner, repoName, "feature", files, "Add tests"); err != nil {
		s.tb.Fatal(err)
	}
	pr, err := s.gh.OpenPull(owner, repoName, fakegithub.PullSpec{Head: "feature", Title: "Add tests"})
	if err != nil {
		s.tb.Fatal(err)
	}
	return pr.GetNumber(), pr.GetHead().GetSHA()
}

// push adds a commit to pull n and returns the new head sha.
func (s *stack) push(n int) string {
	s.tb.Helper()
	sha, err := s.gh.PushPull(owner, repoName, n, map[string]string{"CHANGES": time.Now().String() + "\n"})
	if err != nil {
		s.tb.Fatal(err)
	}
	return sha
}

// workspacePath joins parts under a worker's workspace.
func (s *stack) workspacePath(worker string, parts ...string) string {
	return filepath.Join(append([]string{s.cfg.Dir, worker}, parts...)...)
}

// buildDirs lists the build numbers of pull n in a worker's workspace.
func (s *stack) buildDirs(worker string, n int) []string {
	s.tb.Helper()
	entries, err := os.ReadDir(s.workspacePath(worker, owner, repoName, "pulls", fmt.Sprint(n)))
	if err != nil && !os.IsNotExist(err) {
		s.tb.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
