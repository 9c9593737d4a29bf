package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/githubauth"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/natsserver/natstest"
	"github.com/yourci/yourci/pkg/reconcile"
)

// env is one test's world: a GitHub stand-in, a JetStream server with the
// YourCI stream and the sweep's bucket, and the sweep's GitHub clients.
type env struct {
	gh      *fakegithub.Server
	url     string // NATS
	bus     *events.Bus
	js      jetstream.JetStream // the test's own view of the stream
	store   *reconcile.Store
	backlog *reconcile.StreamBacklog
	auth    githubauth.Config
}

// testServer is a running NATS server of either kind.
type testServer interface {
	URL() string
	Shutdown()
}

// serverKinds start the embedded server or Debian's nats-server 2.9.10,
// the oldest supported.
var serverKinds = []struct {
	name  string
	start func(t testing.TB) testServer
}{
	{"embedded", startEmbedded},
	{"nats-server_binary", func(t testing.TB) testServer {
		return natstest.StartExternal(t, natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort})
	}},
}

func startEmbedded(t testing.TB) testServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := natsserver.Start(ctx, natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// newEnv starts a fresh world on the embedded server with token
// credentials.
func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, startEmbedded(t))
}

func newEnvOn(t testing.TB, srv testServer) *env {
	t.Helper()
	gh, err := fakegithub.New(t.TempDir())
	if err != nil {
		t.Fatalf("starting fake github: %v", err)
	}
	t.Cleanup(gh.Close)
	ctx := testContext(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatalf("connecting to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	bus, err := events.New(ctx, nc, events.Options{Memory: true, Timeout: 5 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("setting up the bus: %v", err)
	}
	store, err := reconcile.OpenStore(ctx, bus, reconcile.StoreOptions{Memory: true})
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("opening JetStream: %v", err)
	}
	return &env{
		gh: gh, url: srv.URL(), bus: bus, js: js, store: store,
		backlog: reconcile.NewStreamBacklog(bus.Queue()),
		auth:    githubauth.Config{Token: gh.Token(), APIURL: gh.URL() + "/", Timeout: 10 * time.Second},
	}
}

// appAuth switches the env's credentials to the stand-in's GitHub App.
func (e *env) appAuth(t testing.TB) {
	t.Helper()
	key := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(key, e.gh.AppPrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	e.auth = githubauth.Config{AppID: e.gh.AppID(), AppPrivateKeyFile: key, APIURL: e.gh.URL() + "/", Timeout: 10 * time.Second}
}

// sweeper is a new Sweeper, as a new cron run would make, with its own
// clients and cache over the env's shared store. tweak adjusts options.
func (e *env) sweeper(t testing.TB, repos []events.Repo, tweak func(*reconcile.Options, *reconcile.CacheOptions)) (*reconcile.Sweeper, *reconcile.Cache) {
	t.Helper()
	opts := reconcile.Options{
		Repositories: repos,
		Queue:        sweepQueue{e.bus.Queue(), e.bus.Registry()},
		Backlog:      e.backlog,
		Store:        e.store,
		MaxRebuilds:  reconcile.DefaultMaxRebuilds,
		Logger:       testLogger(t),
	}
	var cacheOpts reconcile.CacheOptions
	if tweak != nil {
		tweak(&opts, &cacheOpts)
	}
	cacheOpts.Logger = testLogger(t)
	auth, err := githubauth.New(e.auth)
	if err != nil {
		t.Fatal(err)
	}
	cache := reconcile.NewCache(e.store, cacheOpts)
	clients := reconcile.NewClients(auth, cache)
	opts.GitHub = clients
	opts.Requests = cache.Requests
	app, isApp, err := clients.App()
	if err != nil {
		t.Fatal(err)
	}
	if isApp {
		opts.App = app
	}
	s, err := reconcile.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, cache
}

// repoWithPulls creates owner/name with n open pull requests (one branch
// each) and returns their head commits, pull 1 first.
func (e *env) repoWithPulls(t testing.TB, owner, name string, n int) []string {
	t.Helper()
	if _, err := e.gh.CreateRepo(owner, name); err != nil {
		t.Fatal(err)
	}
	if _, err := e.gh.Commit(owner, name, "main", map[string]string{"README.md": "# " + name + "\n"}, "Initial commit"); err != nil {
		t.Fatal(err)
	}
	heads := make([]string, n)
	for i := range n {
		heads[i] = e.openPull(t, owner, name, fmt.Sprintf("feature-%d", i+1))
	}
	return heads
}

// openPull commits to a new branch and opens a pull request from it,
// returning its head commit. No webhook reaches anyone: no hook is
// registered, as when the receiver is down.
func (e *env) openPull(t testing.TB, owner, name, branch string) string {
	t.Helper()
	sha, err := e.gh.Commit(owner, name, branch, map[string]string{branch + ".txt": branch + "\n"}, "Work on "+branch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.gh.OpenPull(owner, name, fakegithub.PullSpec{Head: branch}); err != nil {
		t.Fatal(err)
	}
	return sha
}

// queued reads every PullEvent in the stream, oldest first, without
// consuming them.
func (e *env) queued(t testing.TB) []events.PullEvent {
	t.Helper()
	ctx := testContext(t)
	stream, err := e.js.Stream(ctx, events.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.PullEvent
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(msg.Subject, strings.TrimSuffix(events.PullSubjects, ">")) {
			continue
		}
		var ev events.PullEvent
		if err := json.Unmarshal(msg.Data, &ev); err != nil {
			t.Fatalf("decoding %s: %v", msg.Subject, err)
		}
		out = append(out, ev)
	}
	return out
}

// purge empties the stream, as a lost NATS store would.
func (e *env) purge(t testing.TB) {
	t.Helper()
	ctx := testContext(t)
	stream, err := e.js.Stream(ctx, events.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(ctx); err != nil {
		t.Fatal(err)
	}
}

// sweep runs one sweep and fails the test on an error.
func sweep(t testing.TB, s *reconcile.Sweeper) reconcile.Summary {
	t.Helper()
	sum, err := s.Sweep(testContext(t))
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return sum
}

func repo(owner, name string) events.Repo { return events.Repo{Owner: owner, Name: name} }

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testContext ends with the test, and after a minute at most so that a
// hung test fails instead of stalling the suite.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sweepQueue is reconcile.Queue made of a Bus's parts, as cmd/reconcile
// wires it.
type sweepQueue struct {
	*events.Queue
	*events.Registry
}

// workerQueue is worker.Queue made of a Bus's parts, as cmd/worker wires
// it.
type workerQueue struct {
	*events.Queue
	*events.Registry
	*events.Heads
}
