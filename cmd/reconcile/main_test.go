package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/pause"
	"github.com/yourci/yourci/pkg/reconcile"
)

// world is a GitHub stand-in with acme/widgets and one open pull request,
// and a JetStream server, for one run of the command.
type world struct {
	gh   *fakegithub.Server
	nats *natsserver.Server
	vars map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	gh, err := fakegithub.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	if _, err := gh.CreateRepo("acme", "widgets"); err != nil {
		t.Fatal(err)
	}
	for _, branch := range []string{"main", "feature"} {
		if _, err := gh.Commit("acme", "widgets", branch, map[string]string{branch: branch}, "Add "+branch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := gh.OpenPull("acme", "widgets", fakegithub.PullSpec{Head: "feature"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv, err := natsserver.Start(ctx, natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return &world{gh: gh, nats: srv, vars: map[string]string{
		"GITHUB_ACCESS_TOKEN": gh.Token(), "GITHUB_API_URL": gh.URL() + "/",
		"GITHUB_REPOSITORIES": "acme/widgets", "NATS_URL": srv.URL(),
	}}
}

// run runs the command with the world's environment.
func (w *world) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	code = run(ctx, args, env(w.vars), &out, &errOut)
	if testing.Verbose() {
		t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	return code, out.String(), errOut.String()
}

// holdLock takes the sweep lock as a running sweep would.
func (w *world) holdLock(t *testing.T) {
	t.Helper()
	nc, err := nats.Connect(w.nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	bus, err := events.New(t.Context(), nc, events.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := reconcile.OpenStore(t.Context(), bus, reconcile.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := store.Acquire(t.Context(), reconcile.LockOptions{Holder: "the cron run before"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lock.Release(context.Background()); err != nil {
			t.Errorf("releasing the lock: %v", err)
		}
	})
}

func TestExitStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, w *world)
		args    []string
		want    int
		stdout  []string
		stderr  []string
	}{
		{name: "a_sweep_that_swept_everything", want: exitOK,
			stdout: []string{"1 repositories swept", "builds queued:   1", "GitHub requests:", "rate limit:"}},
		{name: "a_second_sweep_costs_no_counted_request", want: exitOK,
			prepare: func(t *testing.T, w *world) {
				if code, _, stderr := w.run(t); code != exitOK {
					t.Fatalf("first sweep exited %d: %s", code, stderr)
				}
			},
			stdout: []string{"builds queued:   0 (1 already waiting", "0 counted against the rate limit"}},
		{name: "a_repository_that_cannot_be_swept", want: exitFailed,
			prepare: func(_ *testing.T, w *world) { w.vars["GITHUB_REPOSITORIES"] = "acme/widgets acme/gone" },
			stdout:  []string{"FAILED:          acme/gone"}, stderr: []string{"some repositories were not swept"}},
		{name: "another_sweep_holds_the_lock", want: exitLocked, args: []string{"-wait", "100ms"},
			prepare: func(t *testing.T, w *world) { w.holdLock(t) },
			stderr:  []string{"another sweep holds the lock", "the cron run before"}},
		{name: "rate_limited", want: exitRateLimited,
			prepare: func(_ *testing.T, w *world) {
				w.gh.FailNext("GET", "/repos/acme/widgets/pulls", 1, http.StatusForbidden, http.Header{
					"X-RateLimit-Remaining": {"0"}, "X-RateLimit-Reset": {fmt.Sprint(time.Now().Add(time.Hour).Unix())}})
			},
			stdout: []string{"STOPPED:         stopped at acme/widgets by GitHub's rate limit until"}},
		{name: "bad_configuration", want: exitUsage,
			prepare: func(_ *testing.T, w *world) { w.vars["GITHUB_REPOSITORIES"] = "not-a-repo" },
			stderr:  []string{"invalid configuration", `"not-a-repo"`}},
		{name: "bad_flag", want: exitUsage, args: []string{"-no-such-flag"}},
		{name: "cleanup", want: exitOK,
			prepare: func(t *testing.T, w *world) {
				ws := t.TempDir()
				old := filepath.Join(ws, "acme", "widgets", "pulls", "1", "1", "foo", "out.txt")
				if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(old, []byte("log\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				past := time.Now().Add(-30 * 24 * time.Hour)
				for _, p := range []string{old, filepath.Dir(old), filepath.Dir(filepath.Dir(old))} {
					if err := os.Chtimes(p, past, past); err != nil {
						t.Fatal(err)
					}
				}
				// A repository cache last used two months ago goes too.
				cache := filepath.Join(ws, ".cache", "acme", "gadgets")
				if err := os.MkdirAll(cache, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(cache, past.Add(-30*24*time.Hour), past.Add(-30*24*time.Hour)); err != nil {
					t.Fatal(err)
				}
				delete(w.vars, "GITHUB_ACCESS_TOKEN")
				w.vars["YCI_WORKSPACE"] = ws
			},
			args:   []string{"-cleanup-older-than", "336h"},
			stdout: []string{"removed build acme/widgets#1/1", "removed cache acme/gadgets", "cleanup: 1 builds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			if tt.prepare != nil {
				tt.prepare(t, w)
			}
			code, stdout, stderr := w.run(t, tt.args...)
			if code != tt.want {
				t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.want, stdout, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
		})
	}
}

func TestSIGTERMStopsAWaitingRun(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.holdLock(t)
	ctx, sigterm := context.WithCancel(t.Context())
	done := make(chan int)
	var out, errOut syncBuffer
	go func() { done <- run(ctx, []string{"-wait", "10m"}, env(w.vars), &out, &errOut) }()
	waitCtx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	if pause.Poll(waitCtx, 10*time.Millisecond, func() bool { return strings.Contains(errOut.String(), "waiting for the sweep lock") }) != nil {
		t.Fatalf("the run never said it waits for the lock:\n%s", errOut.String())
	}
	sigterm()
	if code := <-done; code != exitFailed {
		t.Errorf("exit status %d, want %d\n%s%s", code, exitFailed, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "context canceled") {
		t.Errorf("stderr does not say the run was stopped:\n%s", errOut.String())
	}
}

func TestMetricsFileHoldsTheSweepsResults(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	path := filepath.Join(t.TempDir(), "yci_reconcile.prom")
	if code, stdout, stderr := w.run(t, "-metrics-file", path); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"yci_reconcile_repositories_swept 1\n", "yci_reconcile_builds_queued 1\n", "yci_reconcile_rate_limited 0\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics file lacks %q:\n%s", want, b)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's writes and the test's
// reads at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
