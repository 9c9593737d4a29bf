package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/pause"
)

// testContexts counts the per-test contexts (yci/<name>) among m, leaving
// out the summary context yci.
func testContexts(m map[string]github.RepoStatus) int {
	n := 0
	for c := range m {
		if strings.HasPrefix(c, "yci/") {
			n++
		}
	}
	return n
}

// checkSummaryAndPage checks the summary status of build 1 of pull n at
// sha: pending first, then final as want ("state: description"), always
// linking to the build page; and that the page served there lists every
// test with its final state.
func checkSummaryAndPage(t *testing.T, s *stack, w *worker, n int, sha, want string) {
	t.Helper()
	final := s.waitStatuses(sha, "a final summary", func(m map[string]github.RepoStatus) bool {
		st, ok := m["yci"]
		return ok && st.GetState() != "pending"
	})
	pageURL := w.httpRoot + owner + "/" + repoName + "/pulls/" + strconv.Itoa(n) + "/1/index.html"
	t.Run("summary_goes_pending_then_final_with_counts", func(t *testing.T) {
		// Every summary names the base the head was tested merged into.
		history := s.descriptions(sha, "yci")
		if len(history) < 2 || !strings.HasPrefix(history[0], "pending: ") || !strings.HasPrefix(history[len(history)-1], want+"; tested merged into main at ") {
			t.Errorf("summary history:\n  %s\nwant pending first and %q, naming the base, last", strings.Join(history, "\n  "), want)
		}
		for _, st := range s.gh.Statuses(owner, repoName, sha) {
			if st.GetContext() == "yci" && st.GetTargetURL() != pageURL {
				t.Errorf("summary %q links to %q, want the build page %q", st.GetDescription(), st.GetTargetURL(), pageURL)
			}
		}
		if st := final["yci"]; st.GetTargetURL() != pageURL {
			t.Errorf("final summary links to %q", st.GetTargetURL())
		}
	})
	t.Run("build_page_lists_every_test", func(t *testing.T) {
		// The page follows the build record a moment after the summary.
		var missing []string
		var page string
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		shows := func() bool {
			page, missing = fetch(t, pageURL), nil
			for c, st := range final {
				name, ok := strings.CutPrefix(c, "yci/")
				if !ok {
					continue
				}
				state := map[string]string{"success": "passed", "failure": "failed", "error": "error"}[st.GetState()]
				if !strings.Contains(page, `<span id="state-`+name+`" class="state `+state+`">`) {
					missing = append(missing, name+" as "+state)
				}
			}
			return len(missing) == 0
		}
		if pause.Poll(ctx, 50*time.Millisecond, shows) != nil {
			t.Errorf("build page does not show %s:\n%s", strings.Join(missing, ", "), page)
		}
	})
}
