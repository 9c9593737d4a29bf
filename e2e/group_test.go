package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
)

// groupYciPy builds one test per head: "pull" for a pull request and,
// for a merge group, "group", which prints what .yci.py read of the pull
// object and, while the marks directory holds "hold", waits for release.
const groupYciPy = `from yci.run import Bash

def test_generator(build_id, pull):
    if pull.get('merge_group'):
        facts = 'head %s base %s at %s' % (pull['head']['sha'], pull['base']['ref'], pull['base']['sha'])
        yield Bash('./test.sh', env={'T': 'group', 'FACTS': facts}, name='group')
    else:
        yield Bash('./test.sh', env={'T': 'pull'}, name='pull')
`

// TestMergeGroupIsBuiltOnItsHeadAndDestroyedStopsIt plays GitHub's merge
// queue against the real receiver and worker: the stand-in writes each
// group's head as a merge commit on gh-readonly-queue/main/... and sends
// signed merge_group webhooks. checks_requested is built and reported on
// the group's head (its test and the yci summary); destroyed stops the
// running test of a second group.
func TestMergeGroupIsBuiltOnItsHeadAndDestroyedStopsIt(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", "YCI_JOBS=2")
	body := `if [ "$T" = group ]; then
  echo "facts: $FACTS group=$YCI_MERGE_GROUP"
  if [ -e "$M/hold" ]; then wait_release; fi
fi`
	n, sha := s.openPull(map[string]string{".yci.py": groupYciPy, "test.sh": s.script(body)})
	if st := s.waitFinal(sha, "yci/pull")["yci/pull"]; st.GetState() != "success" {
		t.Fatalf("the pull's own build: %s %q", st.GetState(), st.GetDescription())
	}

	g, err := s.gh.QueuePull(owner, repoName, n)
	if err != nil {
		t.Fatal(err)
	}
	number, err := events.GroupNumber(g.HeadSHA)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("checks_requested_is_built_and_reported_on_the_group_head", func(t *testing.T) {
		final := s.waitFinal(g.HeadSHA, "yci/group", "yci")
		if st := final["yci/group"]; st.GetState() != "success" {
			t.Fatalf("yci/group: %s %q\n%s", st.GetState(), st.GetDescription(), s.history(g.HeadSHA))
		}
		if st := final["yci"]; st.GetState() != "success" {
			t.Errorf("yci: %s %q, want the summary's success on the group head", st.GetState(), st.GetDescription())
		}
		if _, ok := final["yci/pull"]; ok {
			t.Error("the group's head was built as a pull request's")
		}
		wantURL := w.httpRoot + owner + "/" + repoName + "/pulls/" + strconv.Itoa(number) + "/1/group/out.txt"
		st := final["yci/group"]
		if st.GetTargetURL() != wantURL {
			t.Errorf("target URL %q, want %q", st.GetTargetURL(), wantURL)
		}
		log := fetch(t, wantURL)
		want := "facts: head " + g.HeadSHA + " base main at " + g.BaseSHA + " group=1"
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	})

	// The same group's checks_requested sent again under a new delivery
	// id (beyond JetStream's duplicate window) builds nothing: one build
	// per head commit.
	payload, err := s.gh.MergeGroupPayload(g, "checks_requested", "")
	if err != nil {
		t.Fatal(err)
	}
	resp, _, err := fakegithub.Deliver(s.ctx, s.recv.WebhookURL, secret, "merge_group", payload)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("second checks_requested: %v, %v", resp, err)
	}

	// A second group (the pull moved on and was queued again) is
	// destroyed while its test runs.
	if err := os.WriteFile(filepath.Join(s.marks, "hold"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.push(n)
	g2, err := s.gh.QueuePull(owner, repoName, n)
	if err != nil {
		t.Fatal(err)
	}
	s.waitRunning(g2.HeadSHA, "group")
	if err := s.gh.DestroyGroup(g2, "dequeued"); err != nil {
		t.Fatal(err)
	}
	t.Run("destroyed_stops_the_running_test", func(t *testing.T) {
		st := s.waitFinal(g2.HeadSHA, "yci/group")["yci/group"]
		if st.GetState() != "error" || !strings.Contains(st.GetDescription(), "merge group was destroyed") {
			t.Errorf("yci/group: %s %q, want an error saying the merge group was destroyed\n%s", st.GetState(), st.GetDescription(), s.history(g2.HeadSHA))
		}
	})
	t.Run("the_same_group_twice_is_built_once", func(t *testing.T) {
		// The pull events are handled in order on the one pull slot: the
		// second group running means the repeated one was handled.
		if got := s.buildDirs(w.name, number); len(got) != 1 || got[0] != "1" {
			t.Errorf("group %d has builds %v, want only build 1", number, got)
		}
	})
	t.Run("every_merge_group_delivery_was_accepted", func(t *testing.T) {
		var got int
		for _, d := range s.gh.Deliveries() {
			if d.Event != "merge_group" {
				continue
			}
			got++
			if d.StatusCode != 202 {
				t.Errorf("%s delivery answered %d", d.Action, d.StatusCode)
			}
		}
		if got != 3 {
			t.Errorf("%d merge_group deliveries, want 3", got)
		}
	})
	s.release()
}

// TestMergeGroupWithAppAuthGetsCheckRuns is the queue's group with the
// worker authenticated as a GitHub App: the group's test and the summary
// yci are check runs on the group's head, named for the group's number.
func TestMergeGroupWithAppAuthGetsCheckRuns(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startWorker("worker", append(s.appEnv(), "YCI_JOBS=2")...)
	n, sha := s.openPull(map[string]string{".yci.py": groupYciPy, "test.sh": s.script("true")})
	checkSummaryRun(t, s, sha, 1)
	g, err := s.gh.QueuePull(owner, repoName, n)
	if err != nil {
		t.Fatal(err)
	}
	checkSummaryRun(t, s, g.HeadSHA, 1)
	if got := checkFinals(s)(g.HeadSHA); got["group"] != "success" || len(got) != 1 {
		t.Errorf("check runs on the group head: %v, want group: success alone", got)
	}
	if st := s.gh.Statuses(owner, repoName, g.HeadSHA); len(st) != 0 {
		t.Errorf("the group head has %d commit statuses; an App writes check runs", len(st))
	}
}
