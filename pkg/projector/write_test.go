package projector

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/githubauth"
	"github.com/yourci/yourci/pkg/status"
)

// The writer alone, against the GitHub stand-in: no NATS, no lease, no
// schedule. Each case shows one record once (writer.show) and reads back
// what GitHub got and what the record keeps as shown.

// alwaysLeading is a leader that always leads.
type alwaysLeading struct{}

func (alwaysLeading) Leading() bool { return true }

// noRevisions is a schedule that has seen no revision: every read is
// fresh.
type noRevisions struct{}

func (noRevisions) seenRevision(target) uint64 { return 0 }

// authClients is Clients over real credentials, as the service makes it
// (cmd/worker): check runs only under App auth.
type authClients struct{ c *githubauth.Clients }

func (a authClients) Client(ctx context.Context, id int64) (Client, error) {
	c, err := a.c.ForInstallation(ctx, id)
	if err != nil {
		return Client{}, err
	}
	pc := Client{Statuses: c.Repositories}
	if a.c.Method() == githubauth.MethodApp {
		pc.Checks = c.Checks
	}
	return pc, nil
}

// writerEnv is a GitHub stand-in with one repository and commit, a
// record store and a writer over them.
type writerEnv struct {
	gh    *fakegithub.Server
	store *memrecords.Store
	w     *writer
	sha   string
	inst  int64
}

func newWriterEnv(t *testing.T, app bool) *writerEnv {
	t.Helper()
	gh, err := fakegithub.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	if _, err := gh.CreateRepo("acme", "widget"); err != nil {
		t.Fatal(err)
	}
	sha, err := gh.Commit("acme", "widget", "main", map[string]string{"a.txt": "a\n"}, "first")
	if err != nil {
		t.Fatal(err)
	}
	e := &writerEnv{gh: gh, store: memrecords.New(), sha: sha}
	cfg := githubauth.Config{Token: gh.Token(), APIURL: gh.URL() + "/", Timeout: 10 * time.Second}
	if app {
		key := filepath.Join(t.TempDir(), "app.pem")
		if err := os.WriteFile(key, gh.AppPrivateKeyPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg = githubauth.Config{AppID: gh.AppID(), AppPrivateKeyFile: key, APIURL: gh.URL() + "/", Timeout: 10 * time.Second}
		e.inst = gh.Install("acme", "widget")
	}
	auth, err := githubauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	e.w = &writer{records: e.store, clients: authClients{auth}, httpRoot: "https://ci.example",
		statusOptions: []status.Option{status.WithLogger(log), status.WithMaxAttempts(1)},
		ids:           status.NewCheckRunIDs(), log: log, metrics: NewMetrics(nil),
		leader: alwaysLeading{}, seen: noRevisions{}}
	return e
}

var writerKey = events.BuildKey{Repo: events.Repo{Owner: "acme", Name: "widget"}, Pull: 3, Build: 1}

// record records a build of two tests, one passed and one failed, as a
// worker would.
func (e *writerEnv) record(t *testing.T) {
	t.Helper()
	_, err := e.store.UpdateBuild(context.Background(), writerKey, func(r *events.BuildRecord) error {
		r.SHA, r.Installation, r.Projected = e.sha, e.inst, true
		for name, state := range map[string]events.TestState{"unit": events.TestPassed, "lint": events.TestFailed} {
			tr := r.AddTest(name)
			tr.State, tr.Description, tr.Updated = state, string(state), time.Now()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// shown is the parts the record keeps as shown, sorted.
func (e *writerEnv) shown(t *testing.T) []string {
	t.Helper()
	rec, err := e.store.BuildRecord(context.Background(), writerKey)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for p := range rec.Shown {
		parts = append(parts, p)
	}
	sort.Strings(parts)
	return parts
}

// onGitHub is the contexts (or check run names) GitHub shows of the
// commit, with their states: statuses, then check runs.
func (e *writerEnv) onGitHub() (statuses, checks map[string]string) {
	statuses, checks = map[string]string{}, map[string]string{}
	for c, s := range e.gh.LatestStatuses("acme", "widget", e.sha) {
		statuses[c] = s.GetState()
	}
	for n, r := range e.gh.LatestCheckRuns("acme", "widget", e.sha) {
		checks[n] = r.GetStatus() + "/" + r.GetConclusion()
	}
	return statuses, checks
}

func TestWriterShowsABuildByItsAuth(t *testing.T) {
	t.Parallel()
	wantStatuses := map[string]string{status.Context("unit"): "success", status.Context("lint"): "failure", status.Context(""): "failure"}
	cases := []struct {
		name         string
		app          bool
		wantStatuses int
		wantChecks   int
	}{
		{"token_auth_writes_commit_statuses", false, 3, 0},
		{"app_auth_writes_check_runs", true, 0, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newWriterEnv(t, tc.app)
			e.record(t)
			o := e.w.show(context.Background(), writerKey)
			if o.failed != nil || !o.done {
				t.Fatalf("show = %+v, want done", o)
			}
			statuses, checks := e.onGitHub()
			if len(statuses) != tc.wantStatuses || len(checks) != tc.wantChecks {
				t.Fatalf("GitHub shows statuses %v and check runs %v, want %d and %d", statuses, checks, tc.wantStatuses, tc.wantChecks)
			}
			if !tc.app {
				for c, want := range wantStatuses {
					if statuses[c] != want {
						t.Errorf("status %s = %q, want %q", c, statuses[c], want)
					}
				}
			} else if got := checks[status.Context("")]; got != "completed/failure" {
				t.Errorf("summary check run = %q, want completed/failure; all: %v", got, checks)
			}
			if got, want := e.shown(t), []string{SummaryPart, "lint", "unit"}; !slices.Equal(got, want) {
				t.Errorf("shown = %q, want %q", got, want)
			}
			if got := e.w.writes.Load(); got != 3 {
				t.Errorf("writes = %d, want 3", got)
			}
			// Shown once, the record owes nothing: a second look writes nothing.
			if o := e.w.show(context.Background(), writerKey); o.failed != nil || e.w.writes.Load() != 3 {
				t.Errorf("second show = %+v after %d writes, want nothing written", o, e.w.writes.Load())
			}
		})
	}
}

func TestWriterLeavesAFailedWriteOwed(t *testing.T) {
	t.Parallel()
	// Throttles that have lifted by the retry (a reset in the past, a
	// Retry-After of 0): go-github refuses requests itself until a
	// throttle lifts, and the test waits for nothing.
	limited := http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1"}}
	cases := []struct {
		name   string
		app    bool
		path   string
		code   int
		header http.Header
	}{
		{"status_refused_by_a_server_error", false, "/repos/acme/widget/statuses", http.StatusBadGateway, nil},
		{"status_throttled", false, "/repos/acme/widget/statuses", http.StatusForbidden, limited},
		{"check_run_refused_by_a_server_error", true, "/repos/acme/widget/check-runs", http.StatusBadGateway, nil},
		{"check_run_throttled", true, "/repos/acme/widget/check-runs", http.StatusTooManyRequests, http.Header{"Retry-After": {"0"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newWriterEnv(t, tc.app)
			e.record(t)
			// The first write fails: the look stops there, and every
			// part stays owed.
			e.gh.Traffic.FailNext("POST", tc.path, 1, tc.code, tc.header)
			o := e.w.show(context.Background(), writerKey)
			if o.failed == nil {
				t.Fatalf("show = %+v, want it failed", o)
			}
			if got := e.shown(t); len(got) != 0 {
				t.Fatalf("shown after the failed first write = %q, want nothing", got)
			}
			if got := e.w.writes.Load(); got != 0 {
				t.Errorf("writes = %d, want 0: the failed write stops the look", got)
			}
			// The retry, from the record, writes everything owed.
			if o := e.w.show(context.Background(), writerKey); o.failed != nil || !o.done {
				t.Fatalf("retry = %+v (%v), want done", o, o.failed)
			}
			if got, want := e.shown(t), []string{SummaryPart, "lint", "unit"}; !slices.Equal(got, want) {
				t.Errorf("shown after the retry = %q, want %q", got, want)
			}
		})
	}
}
