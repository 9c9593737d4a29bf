package reconcile

import (
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
	if err := s.WriteMetrics(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"yci_reconcile_last_run_timestamp_seconds 1.800000001e+09",
		"yci_reconcile_duration_seconds 1.5",
		"yci_reconcile_repositories_swept 9",
		"yci_reconcile_repositories_failed 1",
		"yci_reconcile_builds_queued 3",
		"yci_reconcile_github_requests 12",
		"yci_reconcile_github_requests_counted 2",
		"yci_reconcile_github_rate_remaining 4990",
		"yci_reconcile_rate_limited 0",
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
}
