package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"
	dto "github.com/prometheus/client_model/go"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memregistry"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/webhook"
)

func TestPickReruns(t *testing.T) {
	t.Parallel()
	known := []string{"a", "b", "c", "d"}
	states := map[string]events.TestState{"a": events.TestPassed, "b": events.TestFailed, "c": events.TestErrored, "d": events.TestRunning}
	tests := []struct {
		name    string
		cmd     events.Command
		states  map[string]events.TestState
		want    []string
		refusal string // a substring; "" when accepted
	}{
		{name: "bare_retest_runs_failed_and_errored", cmd: events.Command{Kind: events.Retest}, states: states, want: []string{"b", "c"}},
		{name: "names_run_as_given", cmd: events.Command{Kind: events.Retest, Tests: []string{"c", "a"}}, states: states, want: []string{"c", "a"}},
		{name: "a_passed_test_may_be_named", cmd: events.Command{Kind: events.Retest, Tests: []string{"a"}}, states: states, want: []string{"a"}},
		{name: "a_test_without_state_may_be_named", cmd: events.Command{Kind: events.Retest, Tests: []string{"a"}}, states: map[string]events.TestState{}, want: []string{"a"}},
		{name: "a_superseded_test_may_be_named", cmd: events.Command{Kind: events.Retest, Tests: []string{"a"}},
			states: map[string]events.TestState{"a": events.TestSuperseded}, want: []string{"a"}},
		{name: "nothing_failed", cmd: events.Command{Kind: events.Retest}, states: map[string]events.TestState{"a": events.TestPassed, "d": events.TestRunning},
			refusal: "nothing to re-run: no test of build 3 at 0123456 has failed"},
		{name: "superseded_is_not_failed", cmd: events.Command{Kind: events.Retest}, states: map[string]events.TestState{"a": events.TestSuperseded},
			refusal: "nothing to re-run"},
		{name: "no_states_at_all", cmd: events.Command{Kind: events.Retest}, states: map[string]events.TestState{}, refusal: "nothing to re-run"},
		{name: "unknown_name_runs_nothing", cmd: events.Command{Kind: events.Retest, Tests: []string{"b", "zz"}}, states: states,
			refusal: "unknown test `zz`. Build 3 has tests `a`, `b`, `c`, `d`."},
		{name: "invalid_words_run_nothing", cmd: events.Command{Kind: events.Retest, Tests: []string{"b"}, Invalid: 2}, states: states,
			refusal: "2 word(s) cannot be test names. Build 3 has"},
		{name: "invalid_and_unknown", cmd: events.Command{Kind: events.Retest, Tests: []string{"zz"}, Invalid: 1}, states: states,
			refusal: "1 word(s) cannot be test names, and unknown test `zz`."},
		{name: "running_test_is_refused", cmd: events.Command{Kind: events.Retest, Tests: []string{"b", "d"}}, states: states,
			refusal: "`d` still queued or running"},
		{name: "queued_test_is_refused", cmd: events.Command{Kind: events.Retest, Tests: []string{"a"}},
			states: map[string]events.TestState{"a": events.TestQueued}, refusal: "`a` still queued or running"},
		{name: "retrying_test_is_refused", cmd: events.Command{Kind: events.Retest, Tests: []string{"a"}},
			states: map[string]events.TestState{"a": events.TestRetrying}, refusal: "`a` still queued or running"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, o := pickReruns(known, tc.states, tc.cmd, 3, "0123456789abcdef")
			if tc.refusal == "" {
				if o.refusal != "" {
					t.Fatalf("refused: %s", o.refusal)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("re-runs (-want +got):\n%s", diff)
				}
				return
			}
			if !strings.Contains(o.refusal, tc.refusal) || got != nil {
				t.Errorf("got %v, refusal %q; want nothing run and a refusal containing %q", got, o.refusal, tc.refusal)
			}
		})
	}
}

func TestListNamesIsBrief(t *testing.T) {
	t.Parallel()
	names := make([]string, 30)
	for i := range names {
		names[i] = "t" + strings.Repeat("x", i)
	}
	got := listNames(names)
	if !strings.HasPrefix(got, "30 tests: `t`, ") || !strings.HasSuffix(got, "and 18 more") {
		t.Errorf("listNames = %q", got)
	}
}

// commandFakes are in-memory doubles of what HandleCommand asks of GitHub
// and the queue. The registry (builds, approvals, re-run numbers, comment
// and reply claims, sightings) is memregistry's state-based fake, seeded
// from builds and seen by commandHandlerOf; GitHub and the queue keep what
// was written to them.
type commandFakes struct {
	*memregistry.Registry
	mu         sync.Mutex
	permission string
	// perms, when it names a user, is that user's permission instead.
	perms map[string]string
	pull  *github.PullRequest
	// builds are the latest build of each head of pull 4 before the
	// test, seen when each head was first seen (a head not in it is seen
	// when first asked about).
	builds    map[string]int
	seen      map[string]time.Time
	replies   []string
	reactions []string
	published []events.TestJob
	pulls     []events.PullEvent
	failReply error
	// tests are every build's tests; broken, when set, is its .yci.py's
	// error instead; evaluations counts the evaluations asked for.
	tests       []pipeline.Test
	broken      error
	evaluations atomic.Int32
	// tip is the base branch's tip now ("" when there is no branch).
	// failPublish is the PublishTest call that fails (from 1, 0 for
	// none), publishes counts the calls, dedup drops a message id
	// published before.
	failPublish, publishes int
	dedup                  bool
	tip                    string
	tipLookups             atomic.Int32
}

// commandPull is the pull request every command test is about.
var commandPull = events.Repo{Owner: owner, Name: repoName}

// seed gives f a registry holding f.builds and f.seen: each head's build
// claimed by nobody in particular, as an earlier pull event's would be
// to a command, with the pull's numbers in order of the builds.
func (f *commandFakes) seed(t *testing.T) {
	t.Helper()
	f.Registry = memregistry.New()
	shas := slices.SortedFunc(maps.Keys(f.builds), func(a, b string) int { return f.builds[a] - f.builds[b] })
	for _, sha := range shas {
		for n := 0; n < f.builds[sha]; {
			c, err := f.ClaimBuildFor(t.Context(), commandPull, 4, sha, "", true)
			if err != nil || c.Build > f.builds[sha] {
				t.Fatalf("seeding build %d of %s: claimed %d, %v", f.builds[sha], sha, c.Build, err)
			}
			n = c.Build
		}
	}
	for sha, at := range f.seen {
		if _, err := f.SeeHead(t.Context(), commandPull, 4, sha, at); err != nil {
			t.Fatal(err)
		}
	}
}

// approved is who approved which head of pull 4, "sha by", or "" when no
// head is approved.
func (f *commandFakes) approved(t *testing.T) string {
	t.Helper()
	a, err := f.ApprovalOf(t.Context(), commandPull, 4)
	if err != nil {
		t.Fatal(err)
	}
	if a.SHA == "" {
		return ""
	}
	return a.SHA + " " + a.By
}

func (f *commandFakes) GetPermissionLevel(_ context.Context, _, _, user string) (*github.RepositoryPermissionLevel, *github.Response, error) {
	p, ok := f.perms[user]
	if !ok {
		p = f.permission
	}
	return &github.RepositoryPermissionLevel{Permission: github.Ptr(p)}, &github.Response{Response: &http.Response{StatusCode: 200}}, nil
}

func (f *commandFakes) PublishPull(_ context.Context, ev events.PullEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls = append(f.pulls, ev)
	return nil
}

// The approval record is the one part of Queue that /ok-to-test uses;
// the rest of what a pull event asks fails the test's command.
var errUnexpected = errors.New("not expected in these tests")

// baseTip is the base branch's tip: f.tip, or no such branch when it is
// empty; tipLookups counts the lookups.
func (f *commandFakes) baseTip(context.Context, Installation, events.Repo, *headFacts) (string, error) {
	f.tipLookups.Add(1)
	if f.tip == "" {
		return "", artifacts.ErrNoBase
	}
	return f.tip, nil
}
func (f *commandFakes) MarkQueued(context.Context, events.Repo, int, string, int) error {
	return errUnexpected
}
func (f *commandFakes) AnnounceHead(events.HeadAnnouncement) error { return errUnexpected }
func (f *commandFakes) AskApproval(context.Context, events.Repo, int, string) (bool, error) {
	return false, errUnexpected
}
func (f *commandFakes) ForgetAsked(context.Context, events.Repo, int, string) error {
	return errUnexpected
}

// NewRequest and Do answer GET .../pulls/{n} with f.pull, as GitHub's JSON.
func (f *commandFakes) NewRequest(ctx context.Context, method, u string, _ any, _ ...github.RequestOption) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, method, "https://api.github.test/"+u, nil)
}

func (f *commandFakes) Do(_ *http.Request, v any) (*github.Response, error) {
	body, err := json.Marshal(f.pull)
	if err != nil {
		return nil, err
	}
	if _, err := v.(io.Writer).Write(body); err != nil {
		return nil, err
	}
	return &github.Response{Response: &http.Response{StatusCode: http.StatusOK}}, nil
}

func (f *commandFakes) CreateComment(_ context.Context, _, _ string, _ int, c *github.IssueComment) (*github.IssueComment, *github.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failReply != nil {
		return nil, nil, f.failReply
	}
	f.replies = append(f.replies, c.GetBody())
	return c, nil, nil
}

func (f *commandFakes) CreateIssueCommentReaction(_ context.Context, _, _ string, _ int64, content string) (*github.Reaction, *github.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reactions = append(f.reactions, content)
	return &github.Reaction{Content: github.Ptr(content)}, nil, nil
}

// buildTests is the build's .yci.py: f.tests, or f.broken.
func (f *commandFakes) buildTests(context.Context, Installation, artifacts.Build, *headFacts, *events.TestedBase) ([]pipeline.Test, error) {
	f.evaluations.Add(1)
	if f.broken != nil {
		return nil, f.broken
	}
	return f.tests, nil
}

// PublishTest queues job, unless it is publish number failPublish (from
// 1), which fails, or, with dedup set, a message id already queued, which
// the stream's duplicate window drops.
func (f *commandFakes) PublishTest(_ context.Context, job events.TestJob) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publishes++
	if f.publishes == f.failPublish {
		return errors.New("nats: timeout")
	}
	if f.dedup && slices.ContainsFunc(f.published, func(j events.TestJob) bool { return j.MsgID() == job.MsgID() }) {
		return nil
	}
	f.published = append(f.published, job)
	return nil
}

func (f *commandFakes) Installation(context.Context, int64) (Installation, error) {
	return Installation{Pulls: f, Permissions: f, Comments: f, Reactions: f}, nil
}

func TestHandleCommandRefusals(t *testing.T) {
	t.Parallel()
	open := &github.PullRequest{State: github.Ptr("open"), Head: &github.PullRequestBranch{SHA: github.Ptr(headSHA)}}
	closed := &github.PullRequest{State: github.Ptr("closed"), Head: open.Head}
	tests := []struct {
		name  string
		fakes *commandFakes
		reply string
	}{
		{"reader_may_not", &commandFakes{permission: "read", pull: open, builds: map[string]int{headSHA: 1}},
			"@carol: only people with write access to acme/widget.go may run YourCI's commands; nothing was run."},
		{"closed_pull", &commandFakes{permission: "write", pull: closed},
			"@carol: `/retest` was refused: the pull request is closed."},
		{"head_not_built", &commandFakes{permission: "admin", pull: open, builds: map[string]int{}},
			"@carol: `/retest` was refused: the head commit 0123456 has no build yet, so there is nothing to re-run."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := commandHandlerOf(t, tc.fakes, BuildTrusted)
			ev := events.CommandEvent{Repo: events.Repo{Owner: owner, Name: repoName}, Number: 4, CommentID: 9, Author: "carol",
				Commands: []events.Command{{Kind: events.Retest}}}
			if err := h.handle(t.Context(), quiet, ev); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{tc.reply}, tc.fakes.replies); diff != "" {
				t.Errorf("replies (-want +got):\n%s", diff)
			}
			if len(tc.fakes.reactions) != 0 || len(tc.fakes.published) != 0 {
				t.Errorf("a refused command reacted %v or queued %v", tc.fakes.reactions, tc.fakes.published)
			}
		})
	}
	t.Run("a_reply_github_refuses_is_an_error_to_hand_back", func(t *testing.T) {
		t.Parallel()
		f := &commandFakes{permission: "none", failReply: errors.New("502")}
		ev := events.CommandEvent{Repo: events.Repo{Owner: owner, Name: repoName}, Number: 4, CommentID: 9, Author: "carol",
			Commands: []events.Command{{Kind: events.Retest}}}
		if err := commandHandlerOf(t, f, BuildTrusted).handle(t.Context(), quiet, ev); err == nil {
			t.Error("a failed reply was not reported")
		}
	})
}

// TestRepliesAreNeverCommands: the bot's replies come back as
// issue_comment webhooks; none of them may parse as a command.
func TestRepliesAreNeverCommands(t *testing.T) {
	t.Parallel()
	_, unknown := pickReruns([]string{"a"}, nil, events.Command{Kind: events.Retest, Tests: []string{"b"}, Invalid: 1}, 1, "abc")
	_, busy := pickReruns([]string{"a"}, map[string]events.TestState{"a": events.TestRunning}, events.Command{Kind: events.Retest, Tests: []string{"a"}}, 1, "abc")
	_, none := pickReruns([]string{"a"}, nil, events.Command{Kind: events.Retest}, 1, "abc")
	for _, refusal := range []string{unknown.refusal, busy.refusal, none.refusal} {
		for _, body := range []string{
			"@carol: `/retest` was refused: " + refusal,
			"@carol:\n- `/retest` was refused: " + refusal + "\n- `/retest` was refused: " + refusal,
		} {
			if cmds := webhook.ParseCommands(body); len(cmds) != 0 {
				t.Errorf("reply %q parses as %+v", body, cmds)
			}
		}
	}
}

// TestCommentRunsOnce: a comment's webhook sent again under another
// delivery id runs nothing, while an edit with new commands runs them.
func TestCommentRunsOnce(t *testing.T) {
	t.Parallel()
	f := &commandFakes{perms: map[string]string{"carol": "write", "outsider": "read"}, seen: map[string]time.Time{},
		pull: &github.PullRequest{State: github.Ptr("open"), Head: &github.PullRequestBranch{SHA: github.Ptr(headSHA)},
			User: &github.User{Login: github.Ptr("outsider")}}}
	h := commandHandlerOf(t, f, BuildTrusted)
	written := time.Now().Add(time.Minute) // the head was seen before it
	ev := events.CommandEvent{Repo: events.Repo{Owner: owner, Name: repoName}, Number: 4, CommentID: 9, Author: "carol",
		Installation: 7, Commands: []events.Command{{Kind: events.OkToTest}}, WrittenAt: written}
	edit := ev
	edit.Commands = []events.Command{{Kind: events.OkToTest, SHA: headSHA[:7]}}
	for i, step := range []struct {
		ev       events.CommandEvent
		delivery string
		builds   int // pull events queued, one per approval carried out
	}{
		{ev, "d-1", 1},
		{ev, "d-1", 2},   // the same message delivered again: handled again, harmlessly
		{ev, "d-2", 2},   // the webhook sent again: nothing
		{edit, "d-3", 3}, // an edit with a new command: it runs
		{edit, "d-4", 3}, // that edit sent again: nothing
	} {
		step.ev.Delivery = step.delivery
		if err := h.handle(t.Context(), quiet, step.ev); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := f.approved(t); got != headSHA+" carol" || len(f.pulls) != step.builds {
			t.Errorf("after step %d (%s): approved %q, %d pull events; want carol's approval of the head and %d", i, step.delivery, got, len(f.pulls), step.builds)
		}
	}
}

// TestRefusalRepliesAreLimited: forty refused comments from one reader on
// one pull request get one reply; the rest are counted, not posted.
func TestRefusalRepliesAreLimited(t *testing.T) {
	t.Parallel()
	f := &commandFakes{permission: "read"}
	h := commandHandlerOf(t, f, BuildTrusted)
	for i := range 40 {
		ev := events.CommandEvent{Repo: events.Repo{Owner: owner, Name: repoName}, Number: 4, CommentID: int64(100 + i), Author: "reader",
			Delivery: fmt.Sprintf("d-%d", i), Commands: []events.Command{{Kind: events.Retest}}, WrittenAt: time.Now()}
		if err := h.handle(t.Context(), quiet, ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.replies) != 1 {
		t.Errorf("%d replies to forty refused comments, want 1", len(f.replies))
	}
	var held dto.Metric
	if err := h.metrics.RepliesHeld.Write(&held); err != nil {
		t.Fatal(err)
	}
	if got := held.GetCounter().GetValue(); got != 39 {
		t.Errorf("replies held = %v, want 39", got)
	}
	other := events.CommandEvent{Repo: events.Repo{Owner: owner, Name: repoName}, Number: 4, CommentID: 999, Author: "someone",
		Commands: []events.Command{{Kind: events.Retest}}, WrittenAt: time.Now()}
	if err := h.handle(t.Context(), quiet, other); err != nil {
		t.Fatal(err)
	}
	if len(f.replies) != 2 {
		t.Errorf("another person's refusal got %d replies in all, want their own one", len(f.replies))
	}
}
