package reconcile

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSummaryWriteMetrics(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	s := Summary{
		Started: start, Finished: start.Add(1500 * time.Millisecond),
		Repositories: 9, Pulls: 180, Queued: 3, Rebuilt: 1,
		Requests: RequestStats{Total: 12, NotModified: 10, RateKnown: true, RateRemaining: 4990},
		Failed:   []RepoError{{Repo: "acme/broken"}},
	}
	path := filepath.Join(t.TempDir(), "yci_reconcile.prom")
	if err := s.WriteMetrics(path, s.Err()); err != nil {
		t.Fatal(err)
	}
	wantLines(t, path, []string{
		"yci_reconcile_last_run_timestamp_seconds 1.800000001e+09",
		"yci_reconcile_duration_seconds 1.5",
		"yci_reconcile_repositories_swept 9",
		"yci_reconcile_repositories_failed 1",
		"yci_reconcile_builds_queued 3",
		"yci_reconcile_github_requests 12",
		"yci_reconcile_github_requests_counted 2",
		"yci_reconcile_github_rate_remaining 4990",
		"yci_reconcile_rate_limited 0",
		"yci_reconcile_success 0",
	}, []string{lastSuccessMetric})
}

// The last-success timestamp moves only on success; a failed sweep keeps
// the previous one and counts a failure even when it reached no
// repository (it could not list them).
func TestWriteMetricsKeepsLastSuccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "yci_reconcile.prom")
	at := func(sec int64) Summary {
		return Summary{Started: time.Unix(sec, 0), Finished: time.Unix(sec, 0), Repositories: 2}
	}
	listingFailed := errors.New("listing repositories: 502 Bad Gateway")
	steps := []struct {
		name  string
		sum   Summary
		err   error
		want  []string
		never []string
	}{
		{"first_run_fails", Summary{Started: time.Unix(1000, 0), Finished: time.Unix(1000, 0)}, listingFailed,
			[]string{"yci_reconcile_success 0", "yci_reconcile_repositories_failed 1"}, []string{lastSuccessMetric}},
		{"success_sets_it", at(2000), nil,
			[]string{"yci_reconcile_success 1", "yci_reconcile_repositories_failed 0", lastSuccessMetric + " 2000"}, nil},
		{"failure_keeps_it", Summary{Started: time.Unix(3000, 0), Finished: time.Unix(3000, 0)}, listingFailed,
			[]string{"yci_reconcile_success 0", "yci_reconcile_repositories_failed 1", lastSuccessMetric + " 2000", "yci_reconcile_last_run_timestamp_seconds 3000"}, nil},
		{"next_success_moves_it", at(4000), nil,
			[]string{"yci_reconcile_success 1", lastSuccessMetric + " 4000"}, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.sum.WriteMetrics(path, st.err); err != nil {
				t.Fatal(err)
			}
			wantLines(t, path, st.want, st.never)
		})
	}
}

func wantLines(t *testing.T, path string, want, never []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(string(b), w+"\n") {
			t.Errorf("metrics lack %q:\n%s", w, b)
		}
	}
	for _, n := range never {
		if strings.Contains(string(b), n) {
			t.Errorf("metrics have %q:\n%s", n, b)
		}
	}
}

// "sweep finished" is logged on a logger that already names the sweep: the
// summary must not add the key again.
func TestLogAttrsLeaveTheSweepKeyToTheLogger(t *testing.T) {
	var b strings.Builder
	log := slog.New(slog.NewJSONHandler(&b, nil)).With("sweep", "s1")
	log.Info("sweep finished", Summary{ID: "s1", Repositories: 1}.LogAttrs()...)
	if n := strings.Count(b.String(), `"sweep":`); n != 1 {
		t.Errorf(`"sweep" appears %d times in %s`, n, b.String())
	}
}
