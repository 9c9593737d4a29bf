package worker

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
)

const headSHA = "0123456789abcdef0123456789abcdef01234567"

// quiet is the logger of tests that read no logs.
var quiet = slog.New(slog.DiscardHandler)

// commandHandlerOf is a command handler whose GitHub, ledger, queue,
// approvals and .yci.py are f, its registry seeded (commandFakes.seed),
// with empty in-memory records.
func commandHandlerOf(t *testing.T, f *commandFakes, policy Policy) *commandHandler {
	f.seed(t)
	return &commandHandler{
		github: f, writers: &trustCache{entries: map[string]trustEntry{}, now: time.Now},
		ledger: f, reruns: f, publish: f, approvals: f, records: memrecords.New(), tests: f, tips: f,
		runLogURL: func(b artifacts.Build, name string, k int) string {
			return fmt.Sprintf("%s%s/%s/pulls/%d/%d/%s/rerun-%d/out.txt", httpRoot, b.Owner, b.Repo, b.Pull, b.Number, name, k)
		},
		policy: policy, metrics: NewMetrics(nil), now: time.Now,
	}
}

// TestOkToTest carries /ok-to-test out against in-memory GitHub and
// queue: the facts it gathers and what it does with the plan. What it
// decides on which facts is TestPlanCommands'.
func TestOkToTest(t *testing.T) {
	t.Parallel()
	pull := &github.PullRequest{State: github.Ptr("open"), Head: &github.PullRequestBranch{SHA: github.Ptr(headSHA)},
		User: &github.User{Login: github.Ptr("outsider")}}
	writer := map[string]string{"carol": "write", "outsider": "read"}
	written := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		fakes    *commandFakes
		reply    string // "" when accepted: a reaction, no reply
		approved string // "sha by" afterwards, "" for none
	}{
		{name: "writer_approves_and_builds_the_head", fakes: &commandFakes{perms: writer, pull: pull,
			seen: map[string]time.Time{headSHA: written.Add(-time.Minute)}}, approved: headSHA + " carol"},
		{name: "a_head_first_seen_now_is_refused", fakes: &commandFakes{perms: writer, pull: pull, seen: map[string]time.Time{}},
			reply: "@carol: `/ok-to-test` was refused: the head of the pull request is now `" + headSHA +
				"`, which YourCI cannot tell was there when this comment was written; nothing was approved. " +
				"To approve it, comment `/ok-to-test 0123456789ab` once you have looked at it."},
		{name: "the_authors_permission_is_asked_of_github", fakes: &commandFakes{perms: map[string]string{"carol": "write", "outsider": "maintain"},
			pull: pull, seen: map[string]time.Time{headSHA: written.Add(-time.Minute)}},
			reply: "@carol: `/ok-to-test`: @outsider may write to acme/widget.go, so their commits are built without approval."},
		{name: "non_writer_is_refused", fakes: &commandFakes{perms: map[string]string{"carol": "triage"}, pull: pull},
			reply: "@carol: only people with write access to acme/widget.go may run YourCI's commands; nothing was run."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := commandHandlerOf(t, tc.fakes, BuildTrusted)
			ev := events.CommandEvent{Repo: events.Repo{Owner: owner, Name: repoName}, Number: 4, CommentID: 9, Author: "carol",
				Installation: 7, Delivery: "d-1", Commands: []events.Command{{Kind: events.OkToTest}}, WrittenAt: written}
			if err := h.handle(t.Context(), quiet, ev); err != nil {
				t.Fatal(err)
			}
			f := tc.fakes
			if got := f.approved(t); got != tc.approved {
				t.Errorf("approved %q, want %q", got, tc.approved)
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
			h := commandHandlerOf(t, tc.fakes, BuildTrusted)
			ev := events.CommandEvent{Repo: events.Repo{Owner: owner, Name: repoName}, Number: 4, Author: "carol",
				Button: &tc.button, Commands: []events.Command{{Kind: tc.kind, Tests: []string{"a"}}}}
			if err := h.handle(t.Context(), slog.New(slog.NewTextHandler(&logs, nil)), ev); err != nil {
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
