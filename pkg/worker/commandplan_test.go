package worker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
)

func ptr[T any](v T) *T { return &v }

// planFrom plans world's commands as handle does, giving planCommands
// each fact it asks for from world, and returns the plan and the facts
// it asked for, in order.
func planFrom(t *testing.T, world commandFacts) (commandPlan, []fact) {
	t.Helper()
	f := commandFacts{ev: world.ev, policy: world.policy}
	var asked []fact
	for range 20 {
		p := planCommands(f)
		if p.need == factNone {
			return p, asked
		}
		asked = append(asked, p.need)
		missing := false
		switch p.need {
		case factWriter:
			f.writer, missing = world.writer, world.writer == nil
		case factSuitePulls:
			f.suitePulls, f.suitePullsKnown, missing = world.suitePulls, true, !world.suitePullsKnown
		case factHead:
			f.head, missing = world.head, world.head == nil
		case factBuild:
			f.build, f.buildBy, missing = world.build, world.buildBy, world.build == nil
		case factTests:
			f.tests, missing = world.tests, world.tests == nil
		case factSeen:
			f.seen, missing = world.seen, world.seen == nil
		case factApproval:
			f.approval, missing = world.approval, world.approval == nil
		case factAuthorWrites:
			f.authorWrites, missing = world.authorWrites, world.authorWrites == nil
		case factOwnReruns:
			f.ownRuns, f.ownRunsKnown = world.ownRuns, true
		case factBase:
			// A world without base facts has a build whose base did
			// not move (it has no record yet).
			f.base = world.base
			if f.base == nil {
				f.base = &baseFacts{}
			}
		}
		if missing {
			t.Fatalf("the plan asks for %v, which the test's world lacks (asked %v)", p.need, asked)
		}
	}
	t.Fatalf("the plan keeps asking for facts: %v", asked)
	return commandPlan{}, nil
}

// planShown is what a plan does, in words a table can hold.
type planShown struct {
	Reruns   []string // "build 2: a b"
	Rebuilds []string // "0123456 after build 2"
	Approve  []string
	React    bool
	Reply    string
	Logged   []string // refusals and notes, for presses
}

func showPlan(p commandPlan) planShown {
	s := planShown{React: p.react, Reply: p.reply}
	if p.refuseAuthor != "" {
		s.Reply = p.refuseAuthor
	}
	for _, a := range p.actions {
		switch {
		case a.retest != nil:
			names := make([]string, len(a.retest.tests))
			for i, t := range a.retest.tests {
				names[i] = t.Name
			}
			s.Reruns = append(s.Reruns, fmt.Sprintf("build %d: %s", a.retest.build, strings.Join(names, " ")))
		case a.rebuild != nil:
			s.Rebuilds = append(s.Rebuilds, fmt.Sprintf("%.7s after build %d", a.rebuild.sha, a.rebuild.from))
		default:
			s.Approve = append(s.Approve, a.approve)
		}
	}
	for _, o := range p.outcomes {
		if r := o.refusal + o.note + o.said; r != "" {
			s.Logged = append(s.Logged, r)
		}
	}
	return s
}

// testsIn is build facts of tests a, b, c, d in the given states.
func testsIn(states map[string]events.TestState) *buildTests {
	bt := &buildTests{states: states}
	for _, n := range []string{"a", "b", "c", "d"} {
		bt.tests = append(bt.tests, pipeline.Test{Name: n, Command: "./test.sh"})
	}
	return bt
}

func TestPlanCommands(t *testing.T) {
	t.Parallel()
	repo := events.Repo{Owner: owner, Name: repoName}
	written := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	older := strings.Repeat("e", 40)
	open := &headFacts{state: "open", sha: headSHA, author: "outsider", baseRef: "main"}
	closed := &headFacts{state: "closed", sha: headSHA, author: "outsider"}
	failed := testsIn(map[string]events.TestState{"a": events.TestPassed, "b": events.TestFailed, "c": events.TestErrored, "d": events.TestPassed})
	retest := func(tests ...string) events.Command { return events.Command{Kind: events.Retest, Tests: tests} }
	ok := events.Command{Kind: events.OkToTest}
	comment := func(cmds ...events.Command) events.CommandEvent {
		return events.CommandEvent{Repo: repo, Number: 4, CommentID: 9, Author: "carol", Commands: cmds, WrittenAt: written}
	}
	press := func(b events.Button, c events.Command) events.CommandEvent {
		ev := events.CommandEvent{Repo: repo, Number: 4, Author: "carol", Button: &b, Commands: []events.Command{c}}
		if b.CheckSuite != 0 {
			ev.Number = 0
		}
		return ev
	}
	group, err := events.GroupNumber(headSHA)
	if err != nil {
		t.Fatal(err)
	}
	onGroup := func(ev events.CommandEvent) events.CommandEvent { ev.Number = group; return ev }
	raced := "@carol: `/ok-to-test` was refused: the head of the pull request is now `" + headSHA +
		"`, which YourCI cannot tell was there when this comment was written; nothing was approved. " +
		"To approve it, comment `/ok-to-test 0123456789ab` once you have looked at it."
	seenBefore, seenAfter := ptr(written.Add(-time.Minute)), ptr(written.Add(time.Second))
	approvable := func(ev events.CommandEvent) commandFacts {
		return commandFacts{ev: ev, writer: ptr(true), head: open, seen: seenBefore, approval: &events.Approval{}, authorWrites: ptr(false)}
	}
	// The build merged the head into main at X; main is now at Y.
	baseX, baseY := strings.Repeat("a", 40), strings.Repeat("b", 40)
	mergedX := &events.TestedBase{Ref: "main", SHA: baseX, Merged: true, Merge: strings.Repeat("c", 40)}
	moved := &baseFacts{tested: mergedX, tip: baseY}
	still := &baseFacts{tested: mergedX, tip: baseX}
	rebuilt := "main moved to bbbbbbb since build 2; building again on it as build " + nextBuild + ", which runs every test."
	refusal := func(c events.Command, why string) string {
		return "@carol: `/" + string(c.Kind) + "` was refused: " + why
	}
	const (
		W, S, H, B, T = factWriter, factSuitePulls, factHead, factBuild, factTests
		Seen, A, AW   = factSeen, factApproval, factAuthorWrites
		Bs, R         = factBase, factOwnReruns
	)
	tests := []struct {
		name  string
		world commandFacts
		want  planShown
		asked []fact
	}{
		// Who may command.
		{"a_reader_is_refused_and_nothing_else_is_looked_up",
			commandFacts{ev: comment(retest()), writer: ptr(false)},
			planShown{Reply: "@carol: only people with write access to acme/widget.go may run YourCI's commands; nothing was run."}, []fact{W}},

		// /retest.
		{"a_closed_pull_is_refused_before_its_build_is_looked_up",
			commandFacts{ev: comment(retest()), writer: ptr(true), head: closed},
			planShown{Reply: refusal(retest(), "the pull request is closed."), Logged: []string{"the pull request is closed."}}, []fact{W, H}},
		{"an_unbuilt_head_is_refused_without_evaluating_its_yci_py",
			commandFacts{ev: comment(retest()), writer: ptr(true), head: open, build: ptr(0)},
			planShown{Reply: refusal(retest(), "the head commit 0123456 has no build yet, so there is nothing to re-run."),
				Logged: []string{"the head commit 0123456 has no build yet, so there is nothing to re-run."}}, []fact{W, H, B}},
		{"a_broken_yci_py_has_nothing_to_rerun",
			commandFacts{ev: comment(retest()), writer: ptr(true), head: open, build: ptr(2), tests: &buildTests{broken: ".yci.py line 3: bad"}},
			planShown{Reply: refusal(retest(), "the .yci.py of build 2 is broken (.yci.py line 3: bad), so it has no tests to re-run."),
				Logged: []string{"the .yci.py of build 2 is broken (.yci.py line 3: bad), so it has no tests to re-run."}}, []fact{W, H, B, Bs, T}},
		{"a_bare_retest_reruns_what_failed_or_errored",
			commandFacts{ev: comment(retest()), writer: ptr(true), head: open, build: ptr(2), tests: failed},
			planShown{Reruns: []string{"build 2: b c"}, React: true}, []fact{W, H, B, Bs, T, R}},
		{"a_named_test_reruns_even_when_it_passed",
			commandFacts{ev: comment(retest("a")), writer: ptr(true), head: open, build: ptr(2), tests: failed},
			planShown{Reruns: []string{"build 2: a"}, React: true}, []fact{W, H, B, Bs, T, R}},
		{"a_busy_named_test_is_refused",
			commandFacts{ev: comment(retest("a")), writer: ptr(true), head: open, build: ptr(2),
				tests: testsIn(map[string]events.TestState{"a": events.TestRunning})},
			planShown{Reply: refusal(retest(), "`a` still queued or running; re-run it once it is done."),
				Logged: []string{"`a` still queued or running; re-run it once it is done."}}, []fact{W, H, B, Bs, T, R}},
		{"a_second_retest_in_the_comment_sees_the_first_ones_reruns_queued",
			commandFacts{ev: comment(retest(), retest("b")), writer: ptr(true), head: open, build: ptr(2), tests: failed},
			planShown{Reruns: []string{"build 2: b c"}, React: true, Reply: refusal(retest(), "`b` still queued or running; re-run it once it is done."),
				Logged: []string{"`b` still queued or running; re-run it once it is done."}}, []fact{W, H, B, Bs, T, R}},
		{"several_problems_are_one_reply_listing_them",
			commandFacts{ev: comment(retest("zz"), ok), policy: BuildAll, writer: ptr(true), head: open, build: ptr(2), tests: failed},
			planShown{Reply: "@carol:\n- `/retest` was refused: unknown test `zz`. Build 2 has tests `a`, `b`, `c`, `d`.\n" +
				"- `/ok-to-test`: this YourCI builds every pull request without approval; there is nothing to approve.",
				Logged: []string{"unknown test `zz`. Build 2 has tests `a`, `b`, `c`, `d`.",
					"this YourCI builds every pull request without approval; there is nothing to approve."}}, []fact{W, H, B, Bs, T, R}},

		{"a_retest_delivered_again_queues_its_own_reruns_which_its_record_shows_queued",
			commandFacts{ev: comment(retest()), writer: ptr(true), head: open, build: ptr(2),
				tests:   testsIn(map[string]events.TestState{"a": events.TestPassed, "b": events.TestQueued, "c": events.TestQueued}),
				ownRuns: map[int]map[string]int{0: {"b": 1, "c": 1}}},
			planShown{Reruns: []string{"build 2: b c"}, React: true}, []fact{W, H, B, Bs, T, R}},
		{"another_commands_reruns_are_still_busy_for_this_one",
			commandFacts{ev: comment(retest("a"), retest("b")), writer: ptr(true), head: open, build: ptr(2),
				tests:   testsIn(map[string]events.TestState{"a": events.TestQueued, "b": events.TestQueued}),
				ownRuns: map[int]map[string]int{0: {"a": 1}}},
			planShown{Reruns: []string{"build 2: a"}, React: true, Reply: refusal(retest(), "`b` still queued or running; re-run it once it is done."),
				Logged: []string{"`b` still queued or running; re-run it once it is done."}}, []fact{W, H, B, Bs, T, R}},

		// /retest after the base moved: a new build on the new tip.
		{"a_retest_after_the_base_moved_builds_again_without_evaluating",
			commandFacts{ev: comment(retest()), writer: ptr(true), head: open, build: ptr(2), base: moved},
			planShown{Rebuilds: []string{"0123456 after build 2"}, React: true, Reply: "@carol: `/retest`: " + rebuilt,
				Logged: []string{rebuilt}}, []fact{W, H, B, Bs}},
		{"a_named_retest_after_the_base_moved_builds_every_test_again",
			commandFacts{ev: comment(retest("a")), writer: ptr(true), head: open, build: ptr(2), base: moved},
			planShown{Rebuilds: []string{"0123456 after build 2"}, React: true, Reply: "@carol: `/retest`: " + rebuilt,
				Logged: []string{rebuilt}}, []fact{W, H, B, Bs}},
		{"a_retest_on_the_same_base_reruns_on_the_builds_merge",
			commandFacts{ev: comment(retest()), writer: ptr(true), head: open, build: ptr(2), base: still, tests: failed},
			planShown{Reruns: []string{"build 2: b c"}, React: true}, []fact{W, H, B, Bs, T, R}},
		{"a_retest_after_the_pull_was_retargeted_builds_again",
			commandFacts{ev: comment(retest()), writer: ptr(true), head: &headFacts{state: "open", sha: headSHA, baseRef: "release"},
				build: ptr(2), base: &baseFacts{tested: mergedX, tip: baseX}},
			planShown{Rebuilds: []string{"0123456 after build 2"}, React: true,
				Reply:  "@carol: `/retest`: release moved to aaaaaaa since build 2; building again on it as build " + nextBuild + ", which runs every test.",
				Logged: []string{"release moved to aaaaaaa since build 2; building again on it as build " + nextBuild + ", which runs every test."}},
			[]fact{W, H, B, Bs}},
		{"a_build_of_the_head_alone_has_no_base_to_move",
			commandFacts{ev: comment(retest()), writer: ptr(true), head: open, build: ptr(2),
				base: &baseFacts{tested: &events.TestedBase{Ref: "main", SHA: baseX}}, tests: failed},
			planShown{Reruns: []string{"build 2: b c"}, React: true}, []fact{W, H, B, Bs, T, R}},
		{"a_vanished_base_branch_reruns_on_the_builds_merge",
			commandFacts{ev: comment(retest()), writer: ptr(true), head: open, build: ptr(2), base: &baseFacts{tested: mergedX}, tests: failed},
			planShown{Reruns: []string{"build 2: b c"}, React: true}, []fact{W, H, B, Bs, T, R}},
		{"a_conflicted_build_whose_base_moved_builds_again",
			commandFacts{ev: comment(retest()), writer: ptr(true), head: open, build: ptr(2),
				base: &baseFacts{tested: &events.TestedBase{Ref: "main", SHA: baseX, Merged: true, Conflicts: []string{"x"}}, tip: baseY}},
			planShown{Rebuilds: []string{"0123456 after build 2"}, React: true, Reply: "@carol: `/retest`: " + rebuilt,
				Logged: []string{rebuilt}}, []fact{W, H, B, Bs}},
		{"a_second_retest_in_the_comment_leaves_the_rebuild_to_the_first",
			commandFacts{ev: comment(retest(), retest("b")), writer: ptr(true), head: open, build: ptr(2), base: moved},
			planShown{Rebuilds: []string{"0123456 after build 2"}, React: true, Reply: "@carol: `/retest`: " + rebuilt,
				Logged: []string{rebuilt}}, []fact{W, H, B, Bs}},

		{"the_same_comment_again_after_its_rebuild_was_claimed_queues_that_build_again",
			commandFacts{ev: comment(retest()), writer: ptr(true), head: open, build: ptr(3),
				buildBy: rebuildEvent(comment(retest()), 4, headSHA).MsgID()},
			planShown{Rebuilds: []string{"0123456 after build 0"}, React: true,
				Reply:  "@carol: `/retest`: main moved since the head was built; building again on it as build " + nextBuild + ", which runs every test.",
				Logged: []string{"main moved since the head was built; building again on it as build " + nextBuild + ", which runs every test."}},
			[]fact{W, H, B}},

		// Re-run buttons: never a reaction or a reply.
		{"a_check_runs_re_run_after_the_base_moved_builds_again",
			commandFacts{ev: press(events.Button{CheckRun: 5, SHA: headSHA, Build: 2}, events.Command{Kind: events.RerunCheck, Tests: []string{"d"}}),
				writer: ptr(true), head: open, build: ptr(2), base: moved},
			planShown{Rebuilds: []string{"0123456 after build 2"}, Logged: []string{rebuilt}}, []fact{W, H, B, Bs}},
		{"a_suites_re_run_after_the_base_moved_builds_again",
			commandFacts{ev: press(events.Button{CheckSuite: 6, SHA: headSHA}, events.Command{Kind: events.RerunSuite}),
				writer: ptr(true), suitePulls: []int{4}, suitePullsKnown: true, head: open, build: ptr(2), base: moved},
			planShown{Rebuilds: []string{"0123456 after build 2"}, Logged: []string{rebuilt}}, []fact{W, S, H, B, Bs}},
		{"a_check_runs_re_run_reruns_its_test",
			commandFacts{ev: press(events.Button{CheckRun: 5, SHA: headSHA, Build: 2}, events.Command{Kind: events.RerunCheck, Tests: []string{"d"}}),
				writer: ptr(true), head: open, build: ptr(2), tests: failed},
			planShown{Reruns: []string{"build 2: d"}}, []fact{W, H, B, Bs, T, R}},
		{"a_check_run_of_an_older_build_is_refused_without_evaluating",
			commandFacts{ev: press(events.Button{CheckRun: 5, SHA: headSHA, Build: 1}, events.Command{Kind: events.RerunCheck, Tests: []string{"d"}}),
				writer: ptr(true), head: open, build: ptr(2)},
			planShown{Logged: []string{"the check run shows build 1, and 0123456 has been built again since (build 2)."}}, []fact{W, H, B}},
		{"a_merge_groups_check_is_refused_without_reading_a_pull",
			commandFacts{ev: onGroup(press(events.Button{CheckRun: 5, SHA: headSHA, Build: 1}, events.Command{Kind: events.RerunCheck, Tests: []string{"d"}})),
				writer: ptr(true)},
			planShown{Logged: []string{"a merge group is not built again; queue the pull request again for a new group."}}, []fact{W}},
		{"a_suite_built_for_a_merge_group_is_refused",
			commandFacts{ev: press(events.Button{CheckSuite: 6, SHA: headSHA}, events.Command{Kind: events.RerunSuite}),
				writer: ptr(true), suitePulls: []int{group}, suitePullsKnown: true},
			planShown{Logged: []string{"a merge group is not built again; queue the pull request again for a new group."}}, []fact{W, S}},
		{"a_check_run_on_an_older_commit_is_refused",
			commandFacts{ev: press(events.Button{CheckRun: 5, SHA: older, Build: 1}, events.Command{Kind: events.RerunCheck, Tests: []string{"d"}}),
				writer: ptr(true), head: open},
			planShown{Logged: []string{"the check is on eeeeeee, which is no longer the head of the pull request (0123456)."}}, []fact{W, H}},
		{"a_suite_finds_its_pull_in_the_records_and_reruns_what_is_not_busy",
			commandFacts{ev: press(events.Button{CheckSuite: 6, SHA: headSHA}, events.Command{Kind: events.RerunSuite}),
				writer: ptr(true), suitePulls: []int{4}, suitePullsKnown: true, head: open, build: ptr(2),
				tests: testsIn(map[string]events.TestState{"a": events.TestPassed, "b": events.TestRunning, "c": events.TestQueued})},
			planShown{Reruns: []string{"build 2: a d"}}, []fact{W, S, H, B, Bs, T, R}},
		{"a_suite_built_for_several_pulls_is_refused",
			commandFacts{ev: press(events.Button{CheckSuite: 6, SHA: headSHA}, events.Command{Kind: events.RerunSuite}),
				writer: ptr(true), suitePulls: []int{5, 6}, suitePullsKnown: true},
			planShown{Logged: []string{"0123456 was built for several pull requests ([5 6]); re-run each from its own page."}}, []fact{W, S}},
		{"a_suite_never_built_is_refused",
			commandFacts{ev: press(events.Button{CheckSuite: 6, SHA: headSHA}, events.Command{Kind: events.RerunSuite}),
				writer: ptr(true), suitePulls: []int{}, suitePullsKnown: true},
			planShown{Logged: []string{"0123456 has no build of YourCI's."}}, []fact{W, S}},
		{"a_suite_whose_tests_are_all_busy_is_refused",
			commandFacts{ev: press(events.Button{CheckSuite: 6, SHA: headSHA}, events.Command{Kind: events.RerunSuite}),
				writer: ptr(true), suitePulls: []int{4}, suitePullsKnown: true, head: open, build: ptr(2), tests: testsIn(map[string]events.TestState{
					"a": events.TestQueued, "b": events.TestRunning, "c": events.TestRetrying, "d": events.TestQueued})},
			planShown{Logged: []string{"every test of build 2 is still queued or running."}}, []fact{W, S, H, B, Bs, T}},

		// /ok-to-test.
		{"a_writer_approves_the_head_they_saw", approvable(comment(ok)),
			planShown{Approve: []string{headSHA}, React: true}, []fact{W, H, Seen, A, AW}},
		{"the_same_approval_again_queues_the_build_again",
			func() commandFacts {
				f := approvable(comment(ok))
				f.approval = &events.Approval{SHA: headSHA, By: "carol"}
				return f
			}(),
			planShown{Approve: []string{headSHA}, React: true}, []fact{W, H, Seen, A, AW}},
		{"a_head_pushed_after_the_comment_is_refused_naming_it",
			func() commandFacts { f := approvable(comment(ok)); f.seen = seenAfter; return f }(),
			planShown{Reply: raced, Logged: []string{strings.TrimPrefix(raced, refusal(ok, ""))}}, []fact{W, H, Seen}},
		{"a_comment_of_unknown_time_is_refused",
			func() commandFacts { f := approvable(comment(ok)); f.ev.WrittenAt = time.Time{}; return f }(),
			planShown{Reply: raced, Logged: []string{strings.TrimPrefix(raced, refusal(ok, ""))}}, []fact{W, H, Seen}},
		{"the_named_head_is_approved_whenever_it_was_pushed",
			func() commandFacts {
				f := approvable(comment(events.Command{Kind: events.OkToTest, SHA: "0123456"}))
				f.seen = seenAfter
				return f
			}(),
			planShown{Approve: []string{headSHA}, React: true}, []fact{W, H, Seen, A, AW}},
		{"a_named_commit_that_is_not_the_head_is_refused",
			approvable(comment(events.Command{Kind: events.OkToTest, SHA: "1234567"})),
			planShown{Reply: refusal(ok, "`1234567` is not the head of the pull request, which is now `"+headSHA+"`; nothing was approved."),
				Logged: []string{"`1234567` is not the head of the pull request, which is now `" + headSHA + "`; nothing was approved."}}, []fact{W, H, Seen}},
		{"a_closed_pull_is_not_approved",
			func() commandFacts { f := approvable(comment(ok)); f.head = closed; return f }(),
			planShown{Reply: refusal(ok, "the pull request is closed."), Logged: []string{"the pull request is closed."}}, []fact{W, H}},
		{"a_head_approved_by_another_writer_is_left_alone",
			func() commandFacts {
				f := approvable(comment(ok))
				f.approval = &events.Approval{SHA: headSHA, By: "dave"}
				return f
			}(),
			planShown{Reply: "@carol: `/ok-to-test`: the head commit 0123456 is already approved by @dave.",
				Logged: []string{"the head commit 0123456 is already approved by @dave."}}, []fact{W, H, Seen, A}},
		{"a_trusted_authors_head_needs_no_approval",
			func() commandFacts { f := approvable(comment(ok)); f.authorWrites = ptr(true); return f }(),
			planShown{Reply: "@carol: `/ok-to-test`: @outsider may write to acme/widget.go, so their commits are built without approval.",
				Logged: []string{"@outsider may write to acme/widget.go, so their commits are built without approval."}}, []fact{W, H, Seen, A, AW}},
		{"build_all_needs_no_approval_and_sees_no_head",
			func() commandFacts { f := approvable(comment(ok)); f.policy = BuildAll; return f }(),
			planShown{Reply: "@carol: `/ok-to-test`: this YourCI builds every pull request without approval; there is nothing to approve.",
				Logged: []string{"this YourCI builds every pull request without approval; there is nothing to approve."}}, []fact{W, H}},
		{"an_approval_and_a_retest_in_one_comment",
			func() commandFacts {
				f := approvable(comment(ok, retest()))
				f.build, f.tests = ptr(2), failed
				return f
			}(),
			planShown{Approve: []string{headSHA}, Reruns: []string{"build 2: b c"}, React: true}, []fact{W, H, Seen, A, AW, B, Bs, T, R}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, asked := planFrom(t, tc.world)
			if diff := cmp.Diff(tc.want, showPlan(p)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.asked, asked); diff != "" {
				t.Errorf("facts asked for (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanLeavesItsFactsAlone: planning the comment's commands in order
// changes a copy of the record's states, never the caller's facts.
func TestPlanLeavesItsFactsAlone(t *testing.T) {
	t.Parallel()
	states := map[string]events.TestState{"a": events.TestFailed}
	f := commandFacts{ev: events.CommandEvent{Author: "carol", Commands: []events.Command{{Kind: events.Retest}}},
		writer: ptr(true), head: &headFacts{state: "open", sha: headSHA}, build: ptr(1), tests: testsIn(states), base: &baseFacts{}, ownRunsKnown: true}
	for range 2 {
		if p := planCommands(f); len(p.actions) != 1 {
			t.Fatalf("plan %+v, want a re-run of a each time", p)
		}
	}
	if states["a"] != events.TestFailed {
		t.Errorf("the facts' state of a became %s", states["a"])
	}
}
