package worker

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
)

const headSHA = "0123456789abcdef0123456789abcdef01234567"

// commandWorker is a Worker whose GitHub, queue and re-runs are f.
func commandWorker(f *commandFakes, policy Policy) *Worker {
	return &Worker{
		opts:  Options{GitHub: f, Queue: f, Reruns: f, Policy: policy, Metrics: NewMetrics(nil)},
		log:   slog.New(slog.DiscardHandler),
		trust: trustCache{entries: map[string]trustEntry{}, now: time.Now},
	}
}

func TestOkToTest(t *testing.T) {
	t.Parallel()
	pull := func(state string) *github.PullRequest {
		return &github.PullRequest{State: github.Ptr(state), Head: &github.PullRequestBranch{SHA: github.Ptr(headSHA)},
			User: &github.User{Login: github.Ptr("outsider")}}
	}
	writer := map[string]string{"carol": "write", "outsider": "read"}
	written := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	seenAfter := map[string]time.Time{headSHA: written.Add(time.Second)}
	raced := "@carol: `/ok-to-test` was refused: the head of the pull request is now `" + headSHA +
		"`, which YourCI cannot tell was there when this comment was written; nothing was approved. " +
		"To approve it, comment `/ok-to-test 0123456789ab` once you have looked at it."
	tests := []struct {
		name      string
		fakes     *commandFakes // seen defaults to the head seen a minute before the comment
		cmd       events.Command
		unknown   bool // the comment's time is unknown
		policy    Policy
		reply     string // "" when accepted: a reaction, no reply
		approvals []string
	}{
		{name: "a_head_pushed_after_the_comment_is_refused_naming_it", fakes: &commandFakes{perms: writer, pull: pull("open"), seen: seenAfter},
			reply: raced},
		{name: "a_head_first_seen_now_is_refused", fakes: &commandFakes{perms: writer, pull: pull("open"), seen: map[string]time.Time{}},
			reply: raced},
		{name: "a_comment_of_unknown_time_is_refused", fakes: &commandFakes{perms: writer, pull: pull("open")}, unknown: true,
			reply: raced},
		{name: "the_named_head_is_approved_whenever_it_was_pushed", fakes: &commandFakes{perms: writer, pull: pull("open"), seen: seenAfter},
			cmd: events.Command{Kind: events.OkToTest, SHA: "0123456"}, approvals: []string{headSHA + " carol"}},
		{name: "a_named_commit_that_is_not_the_head_is_refused", fakes: &commandFakes{perms: writer, pull: pull("open")},
			cmd:   events.Command{Kind: events.OkToTest, SHA: "1234567"},
			reply: "@carol: `/ok-to-test` was refused: `1234567` is not the head of the pull request, which is now `" + headSHA + "`; nothing was approved."},
		{name: "writer_approves_and_builds_the_head", fakes: &commandFakes{perms: writer, pull: pull("open")},
			approvals: []string{headSHA + " carol"}},
		{name: "the_same_approval_again_queues_the_build_again", fakes: &commandFakes{perms: writer, pull: pull("open"),
			approval: events.Approval{SHA: headSHA, By: "carol"}}, approvals: []string{headSHA + " carol"}},
		{name: "non_writer_is_refused", fakes: &commandFakes{perms: map[string]string{"carol": "triage"}, pull: pull("open")},
			reply: "@carol: only people with write access to acme/widget.go may run YourCI's commands; nothing was run."},
		{name: "closed_pull_is_refused", fakes: &commandFakes{perms: writer, pull: pull("closed")},
			reply: "@carol: `/ok-to-test` was refused: the pull request is closed."},
		{name: "approved_by_another_writer", fakes: &commandFakes{perms: writer, pull: pull("open"),
			approval: events.Approval{SHA: headSHA, By: "dave"}},
			reply: "@carol: `/ok-to-test`: the head commit 0123456 is already approved by @dave."},
		{name: "trusted_author_needs_no_approval", fakes: &commandFakes{perms: map[string]string{"carol": "write", "outsider": "maintain"}, pull: pull("open")},
			reply: "@carol: `/ok-to-test`: @outsider may write to acme/widget.go, so their commits are built without approval."},
		{name: "build_all_needs_no_approval", fakes: &commandFakes{perms: writer, pull: pull("open")}, policy: BuildAll,
			reply: "@carol: `/ok-to-test`: this YourCI builds every pull request without approval; there is nothing to approve."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.fakes.seen == nil {
				tc.fakes.seen = map[string]time.Time{headSHA: written.Add(-time.Minute)}
			}
			if tc.cmd.Kind == "" {
				tc.cmd.Kind = events.OkToTest
			}
			w := commandWorker(tc.fakes, tc.policy)
			ev := events.CommandEvent{Repo: events.Repo{Owner: owner, Name: repoName}, Number: 4, CommentID: 9, Author: "carol",
				Installation: 7, Delivery: "d-1", Commands: []events.Command{tc.cmd}, WrittenAt: written}
			if tc.unknown {
				ev.WrittenAt = time.Time{}
			}
			if err := w.handleCommand(t.Context(), w.log, ev); err != nil {
				t.Fatal(err)
			}
			f := tc.fakes
			if diff := cmp.Diff(tc.approvals, f.approvals); diff != "" {
				t.Errorf("approvals (-want +got):\n%s", diff)
			}
			if tc.reply != "" {
				if diff := cmp.Diff([]string{tc.reply}, f.replies); diff != "" {
					t.Errorf("replies (-want +got):\n%s", diff)
				}
				if len(f.reactions) != 0 || len(f.pulls) != 0 {
					t.Errorf("an /ok-to-test with nothing to do reacted %v or queued %+v", f.reactions, f.pulls)
				}
				return
			}
			want := []events.PullEvent{{Version: events.Version, Repo: ev.Repo, Number: 4, HeadSHA: headSHA, Installation: 7, Delivery: "d-1"}}
			if diff := cmp.Diff(want, f.pulls); diff != "" {
				t.Errorf("queued pull events (-want +got):\n%s", diff)
			}
			if len(f.replies) != 0 || !cmp.Equal(f.reactions, []string{AcceptedReaction}) {
				t.Errorf("accepted /ok-to-test: replies %q, reactions %q", f.replies, f.reactions)
			}
		})
	}
}

// TestButtonPressesNeverComment: a press has no comment to react to, and
// its refusals (a non-writer, a superseded commit, a closed pull) are
// logged, never posted on the pull request.
func TestButtonPressesNeverComment(t *testing.T) {
	t.Parallel()
	open := &github.PullRequest{State: github.Ptr("open"), Head: &github.PullRequestBranch{SHA: github.Ptr(headSHA)}}
	closed := &github.PullRequest{State: github.Ptr("closed"), Head: open.Head}
	older := strings.Repeat("e", 40)
	tests := []struct {
		name   string
		fakes  *commandFakes
		button events.Button
		kind   events.CommandKind
		logged string
	}{
		{"non_writer", &commandFakes{permission: "read", pull: open}, events.Button{CheckRun: 5, SHA: headSHA, Build: 1}, events.RerunCheck,
			"author may not write"},
		{"superseded_commit", &commandFakes{permission: "write", pull: open, builds: map[string]int{headSHA: 1}},
			events.Button{CheckRun: 5, SHA: older, Build: 1}, events.RerunCheck, "no longer the head of the pull request"},
		{"closed_pull", &commandFakes{permission: "write", pull: closed}, events.Button{CheckSuite: 6, SHA: headSHA}, events.RerunSuite,
			"the pull request is closed"},
		{"head_not_built", &commandFakes{permission: "write", pull: open, builds: map[string]int{}},
			events.Button{CheckSuite: 6, SHA: headSHA}, events.RerunSuite, "has no build yet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs strings.Builder
			w := commandWorker(tc.fakes, BuildTrusted)
			w.log = slog.New(slog.NewTextHandler(&logs, nil))
			ev := events.CommandEvent{Repo: events.Repo{Owner: owner, Name: repoName}, Number: 4, Author: "carol",
				Button: &tc.button, Commands: []events.Command{{Kind: tc.kind, Tests: []string{"a"}}}}
			if err := w.handleCommand(t.Context(), w.log, ev); err != nil {
				t.Fatal(err)
			}
			f := tc.fakes
			if len(f.replies)+len(f.reactions)+len(f.published)+len(f.pulls) != 0 {
				t.Errorf("a refused press replied %q, reacted %q, queued %+v %+v", f.replies, f.reactions, f.published, f.pulls)
			}
			if !strings.Contains(logs.String(), tc.logged) {
				t.Errorf("log lacks %q:\n%s", tc.logged, logs.String())
			}
		})
	}
}
