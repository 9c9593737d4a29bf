package worker

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/webhook"
)

// groupMatrix names its one test after the kind of build, and has it
// print what .yci.py read of the pull object.
const groupMatrix = `from yci.run import Bash

def test_generator(build_id, pull):
    kind = 'group' if pull.get('merge_group') else 'pull'
    yield Bash('test "$YCI_MERGE_GROUP" = 1; echo "merge group $? head %s base %s at %s"; %s' % (
        pull['head']['sha'], pull['base']['ref'], pull['base']['sha'], CMD), name=kind)
`

// queueOutsiderPull opens a pull request from an outsider's fork, whose
// .yci.py runs cmd, and puts it into the merge queue. The group is
// published as the receiver publishes a checks_requested delivery.
func (r *rig) queueOutsiderPull(t *testing.T, cmd string) fakegithub.MergeGroup {
	t.Helper()
	if _, err := r.gh.Commit(owner, repoName, "main", map[string]string{"README": "widget\n"}, "init"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.gh.Fork(owner, repoName, "mallory"); err != nil {
		t.Fatal(err)
	}
	yci := strings.Replace(groupMatrix, "CMD)", "'"+cmd+"')", 1)
	if _, err := r.gh.Commit("mallory", repoName, "patch", map[string]string{".yci.py": yci}, "mine"); err != nil {
		t.Fatal(err)
	}
	pr, err := r.gh.OpenPull(owner, repoName, fakegithub.PullSpec{Head: "patch", Base: "main", Author: "mallory", Fork: true})
	if err != nil {
		t.Fatal(err)
	}
	g, err := r.gh.QueuePull(owner, repoName, pr.GetNumber())
	if err != nil {
		t.Fatal(err)
	}
	payload, err := r.gh.MergeGroupPayload(g, "checks_requested", "")
	if err != nil {
		t.Fatal(err)
	}
	ge, err := webhook.GroupEventFrom(payload, "group-delivery")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.bus.Queue().PublishPull(context.Background(), ge.Event); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestMergeGroupIsBuiltOnItsHeadWithoutTheForkGate(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	g := r.queueOutsiderPull(t, "true")
	final := r.waitFinal(t, g.HeadSHA, "yci/group", "yci")
	if s := final["yci/group"]; s.GetState() != "success" {
		t.Fatalf("yci/group: %s %q, want success", s.GetState(), s.GetDescription())
	}
	if s := final["yci"]; s.GetState() != "success" {
		t.Errorf("yci: %s %q, want the summary's success", s.GetState(), s.GetDescription())
	}
	number, err := events.GroupNumber(g.HeadSHA)
	if err != nil {
		t.Fatal(err)
	}
	path, err := r.ws.LogPath(artifacts.Build{Owner: owner, Repo: repoName, Pull: number, Number: 1}, "group")
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "merge group 0 head " + g.HeadSHA + " base main at " + g.BaseSHA
	if !strings.Contains(string(log), want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}

func TestDestroyedMergeGroupStopsItsRunningTest(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	g := r.queueOutsiderPull(t, "sleep 600")
	r.waitFor(t, g.HeadSHA, func(m map[string]github.RepoStatus) bool {
		s := m["yci/group"]
		return strings.HasPrefix(s.GetDescription(), "running")
	})
	// What the receiver does with a destroyed delivery.
	payload, err := r.gh.MergeGroupPayload(g, "destroyed", "dequeued")
	if err != nil {
		t.Fatal(err)
	}
	ge, err := webhook.GroupEventFrom(payload, "destroyed-delivery")
	if err != nil || !ge.Destroyed {
		t.Fatalf("%+v, %v", ge, err)
	}
	ev := ge.Event
	if _, err := r.bus.Heads().RecordHead(context.Background(), ev.Repo, ev.Number, events.HeadRecord{SHA: ev.HeadSHA, Closed: true, UpdatedAt: ev.PullUpdatedAt}); err != nil {
		t.Fatal(err)
	}
	if err := r.bus.Heads().AnnounceHead(events.HeadAnnouncement{Repo: ev.Repo, Number: ev.Number, SHA: ev.HeadSHA, Closed: true}); err != nil {
		t.Fatal(err)
	}
	if s := r.waitFinal(t, g.HeadSHA, "yci/group")["yci/group"]; s.GetState() != "error" || !strings.Contains(s.GetDescription(), "merge group was destroyed") {
		t.Errorf("%s %q, want error saying the merge group was destroyed", s.GetState(), s.GetDescription())
	}
}
