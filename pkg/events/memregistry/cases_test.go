package memregistry_test

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// step is one call of a contract case and the answer it must get: want
// when it succeeds, or an error wrapping wantErr.
type step struct {
	call    string
	do      func(ctx context.Context, r registry) (any, error)
	want    any
	wantErr error
}

// contractCase is a sequence of calls on one empty registry.
type contractCase struct {
	name  string
	steps []step
}

var (
	repo = events.Repo{Owner: "acme", Name: "widget"}
	shaA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	shaB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	t0   = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
)

func claim(pull int, sha, by string, rebuild bool, want events.Claim) step {
	return step{call: fmt.Sprintf("ClaimBuildFor(#%d, %.4s, %q, rebuild=%v)", pull, sha, by, rebuild), want: want,
		do: func(ctx context.Context, r registry) (any, error) {
			return r.ClaimBuildFor(ctx, repo, pull, sha, by, rebuild)
		}}
}

// claimed is BuildClaim and BuildOf, which must agree.
type claimed struct {
	Build int
	By    string
	OK    bool
}

func buildClaim(pull int, sha string, want claimed) step {
	return step{call: fmt.Sprintf("BuildClaim(#%d, %.4s)", pull, sha), want: want,
		do: func(ctx context.Context, r registry) (any, error) {
			n, by, ok, err := r.BuildClaim(ctx, repo, pull, sha)
			if err != nil {
				return nil, err
			}
			n2, ok2, err := r.BuildOf(ctx, repo, pull, sha)
			if n2 != n || ok2 != ok {
				return nil, fmt.Errorf("BuildOf says %d %v, BuildClaim %d %v", n2, ok2, n, ok)
			}
			return claimed{n, by, ok}, err
		}}
}

func markQueued(pull int, sha string, build int) step {
	return step{call: fmt.Sprintf("MarkQueued(#%d, %.4s, %d)", pull, sha, build),
		do: func(ctx context.Context, r registry) (any, error) {
			return nil, r.MarkQueued(ctx, repo, pull, sha, build)
		}}
}

// approval is an events.Approval with its times reduced to whether they
// are set: the real registry stamps them with its own clock.
type approval struct {
	SHA, By, Asked string
	At, AskedAt    bool
}

func approvalOf(pull int, want approval) step {
	return step{call: fmt.Sprintf("ApprovalOf(#%d)", pull), want: want,
		do: func(ctx context.Context, r registry) (any, error) {
			a, err := r.ApprovalOf(ctx, repo, pull)
			return approval{a.SHA, a.By, a.Asked, !a.At.IsZero(), !a.AskedAt.IsZero()}, err
		}}
}

func approve(pull int, sha, by string) step {
	return step{call: fmt.Sprintf("Approve(#%d, %.4s, %q)", pull, sha, by),
		do: func(ctx context.Context, r registry) (any, error) { return nil, r.Approve(ctx, repo, pull, sha, by) }}
}

func ask(pull int, sha string, first bool) step {
	return step{call: fmt.Sprintf("AskApproval(#%d, %.4s)", pull, sha), want: first,
		do: func(ctx context.Context, r registry) (any, error) { return r.AskApproval(ctx, repo, pull, sha) }}
}

func forget(pull int, sha string) step {
	return step{call: fmt.Sprintf("ForgetAsked(#%d, %.4s)", pull, sha),
		do: func(ctx context.Context, r registry) (any, error) { return nil, r.ForgetAsked(ctx, repo, pull, sha) }}
}

// reruns claims re-runs and then checks that RerunsClaimed remembers them
// and that changing the answer changes nothing stored.
func reruns(build int, by string, tests []string, want map[string]int) step {
	return step{call: fmt.Sprintf("ClaimReruns(build %d, %q, %v)", build, by, tests), want: want,
		do: func(ctx context.Context, r registry) (any, error) {
			runs, err := r.ClaimReruns(ctx, repo, 3, build, tests, by)
			if err != nil {
				return nil, err
			}
			got := maps.Clone(runs)
			for t := range runs {
				runs[t] = -1
			}
			again, ok, err := r.RerunsClaimed(ctx, repo, 3, build, by)
			if err != nil || !ok || !maps.Equal(again, got) {
				return nil, fmt.Errorf("RerunsClaimed then says %v %v %v", again, ok, err)
			}
			return got, nil
		}}
}

type runsClaimed struct {
	Runs map[string]int
	OK   bool
}

func rerunsClaimed(build int, by string, want runsClaimed) step {
	return step{call: fmt.Sprintf("RerunsClaimed(build %d, %q)", build, by), want: want,
		do: func(ctx context.Context, r registry) (any, error) {
			runs, ok, err := r.RerunsClaimed(ctx, repo, 3, build, by)
			return runsClaimed{runs, ok}, err
		}}
}

func see(sha string, now, want time.Time) step {
	return step{call: fmt.Sprintf("SeeHead(%.4s, %s)", sha, now.Format(time.TimeOnly)), want: want,
		do: func(ctx context.Context, r registry) (any, error) { return r.SeeHead(ctx, repo, 3, sha, now) }}
}

func claimComment(comment int64, digest, by string, want bool) step {
	return step{call: fmt.Sprintf("ClaimComment(%d, %q, %q)", comment, digest, by), want: want,
		do: func(ctx context.Context, r registry) (any, error) {
			return r.ClaimComment(ctx, repo, 3, comment, digest, by)
		}}
}

func allowReply(user, by string, now time.Time, want bool) step {
	return step{call: fmt.Sprintf("AllowReply(%q, %q, %s)", user, by, now.Format(time.TimeOnly)), want: want,
		do: func(ctx context.Context, r registry) (any, error) {
			return r.AllowReply(ctx, repo, 3, user, by, now, time.Hour)
		}}
}

func recordHead(rec, want events.HeadRecord) step {
	return step{call: fmt.Sprintf("RecordHead(%.4s at %s, read=%v)", rec.SHA, rec.UpdatedAt.Format(time.TimeOnly), rec.Read), want: want,
		do: func(ctx context.Context, r registry) (any, error) { return r.RecordHead(ctx, repo, 3, rec) }}
}

// headOf wants the record, or none with the zero HeadRecord.
func headOf(want events.HeadRecord) step {
	return step{call: "HeadOf(#3)", want: want,
		do: func(ctx context.Context, r registry) (any, error) {
			rec, ok, err := r.HeadOf(ctx, repo, 3)
			if ok != (rec.SHA != "") {
				return nil, fmt.Errorf("HeadOf says found=%v of %+v", ok, rec)
			}
			return rec, err
		}}
}

// cancelled is s made with a context already done: it must fail with
// context.Canceled.
func cancelled(s step) step {
	return step{call: s.call + " cancelled", wantErr: context.Canceled,
		do: func(ctx context.Context, r registry) (any, error) {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return s.do(ctx, r)
		}}
}

// refused is a call the registry must refuse as an invalid event.
func refused(call string, do func(ctx context.Context, r registry) error) step {
	return step{call: call, wantErr: events.ErrInvalidEvent,
		do: func(ctx context.Context, r registry) (any, error) { return nil, do(ctx, r) }}
}

// contractCases are what callers rely on of the registry.
var contractCases = []contractCase{
	{name: "a_head_claimed_twice_keeps_its_first_build_and_claimant", steps: []step{
		claim(3, shaA, "m1", false, events.Claim{Build: 1, Mine: true, Fresh: true}),
		claim(3, shaA, "m2", false, events.Claim{Build: 1}),
		buildClaim(3, shaA, claimed{1, "m1", true}),
		buildClaim(3, shaB, claimed{}),
	}},
	{name: "build_numbers_increase_per_pull", steps: []step{
		claim(3, shaA, "m1", false, events.Claim{Build: 1, Mine: true, Fresh: true}),
		claim(3, shaB, "m2", false, events.Claim{Build: 2, Mine: true, Fresh: true}),
		claim(4, shaA, "m3", false, events.Claim{Build: 1, Mine: true, Fresh: true}),
	}},
	{name: "the_claimant_again_holds_its_build_until_it_is_queued", steps: []step{
		claim(3, shaA, "m1", false, events.Claim{Build: 1, Mine: true, Fresh: true}),
		claim(3, shaA, "m1", false, events.Claim{Build: 1, Mine: true}),
		markQueued(3, shaA, 1),
		claim(3, shaA, "m1", false, events.Claim{Build: 1, Queued: true}),
		claim(3, shaA, "m2", false, events.Claim{Build: 1, Queued: true}),
	}},
	{name: "a_rebuild_takes_the_next_number_and_the_old_build_cannot_be_marked", steps: []step{
		claim(3, shaA, "m1", false, events.Claim{Build: 1, Mine: true, Fresh: true}),
		claim(3, shaA, "r1", true, events.Claim{Build: 2, Mine: true, Fresh: true}),
		claim(3, shaA, "r1", true, events.Claim{Build: 2, Mine: true}),
		markQueued(3, shaA, 1),
		claim(3, shaA, "r1", false, events.Claim{Build: 2, Mine: true}),
		buildClaim(3, shaA, claimed{2, "r1", true}),
	}},
	{name: "a_claim_without_claimant_is_nobodys_again", steps: []step{
		{call: "ClaimBuild(#3, aaaa)", want: [2]any{1, true}, do: func(ctx context.Context, r registry) (any, error) {
			n, fresh, err := r.ClaimBuild(ctx, repo, 3, shaA, false)
			return [2]any{n, fresh}, err
		}},
		claim(3, shaA, "", false, events.Claim{Build: 1}),
	}},
	{name: "an_approval_covers_the_head_it_names", steps: []step{
		approvalOf(3, approval{}),
		approve(3, shaA, "carol"),
		approvalOf(3, approval{SHA: shaA, By: "carol", At: true}),
		approve(3, shaB, "dave"),
		approvalOf(3, approval{SHA: shaB, By: "dave", At: true}),
		approvalOf(4, approval{}),
	}},
	{name: "approval_is_asked_once_per_head_unless_forgotten", steps: []step{
		ask(3, shaA, true),
		ask(3, shaA, false),
		approvalOf(3, approval{Asked: shaA, AskedAt: true}),
		forget(3, shaB),
		ask(3, shaA, false),
		forget(3, shaA),
		approvalOf(3, approval{}),
		ask(3, shaA, true),
		ask(3, shaB, true),
	}},
	{name: "re_run_numbers_increase_per_test_and_a_claimant_keeps_its_own", steps: []step{
		rerunsClaimed(1, "c1", runsClaimed{}),
		reruns(1, "c1", []string{"lint", "unit"}, map[string]int{"lint": 1, "unit": 1}),
		reruns(1, "c2", []string{"unit"}, map[string]int{"unit": 2}),
		reruns(1, "c1", []string{"unit"}, map[string]int{"lint": 1, "unit": 1}),
		reruns(2, "c2", []string{"unit"}, map[string]int{"unit": 1}),
		rerunsClaimed(1, "c3", runsClaimed{}),
	}},
	{name: "a_head_is_first_seen_once", steps: []step{
		see(shaA, t0, t0),
		see(shaA, t0.Add(time.Hour), t0),
		see(shaB, t0.Add(time.Hour), t0.Add(time.Hour)),
	}},
	{name: "a_comments_commands_are_claimed_once_per_text", steps: []step{
		claimComment(7, "d1", "m1", true),
		claimComment(7, "d1", "m2", false),
		claimComment(7, "d1", "m1", true),
		claimComment(7, "d2", "m2", true),
		claimComment(8, "d1", "m2", true),
	}},
	{name: "replies_to_one_person_are_spaced", steps: []step{
		allowReply("mallory", "m1", t0, true),
		allowReply("mallory", "m2", t0.Add(time.Minute), false),
		allowReply("mallory", "m1", t0.Add(time.Minute), true),
		allowReply("eve", "m2", t0.Add(time.Minute), true),
		allowReply("mallory", "m2", t0.Add(time.Hour), true),
	}},
	{name: "head_records_say_which_head_is_current", steps: []step{
		headOf(events.HeadRecord{}),
		recordHead(events.HeadRecord{SHA: shaA, UpdatedAt: t0}, events.HeadRecord{SHA: shaA, UpdatedAt: t0}),
		recordHead(events.HeadRecord{SHA: shaB, UpdatedAt: t0.Add(-time.Second)}, events.HeadRecord{SHA: shaA, UpdatedAt: t0}),
		recordHead(events.HeadRecord{SHA: shaB, UpdatedAt: t0.Add(time.Second)}, events.HeadRecord{SHA: shaB, UpdatedAt: t0.Add(time.Second)}),
		recordHead(events.HeadRecord{SHA: shaB, Closed: true, UpdatedAt: t0.Add(time.Second)},
			events.HeadRecord{SHA: shaB, UpdatedAt: t0.Add(time.Second), Ambiguous: true}),
		recordHead(events.HeadRecord{SHA: shaB, Closed: true, UpdatedAt: t0.Add(time.Second), Read: true},
			events.HeadRecord{SHA: shaB, Closed: true, UpdatedAt: t0.Add(time.Second), Read: true}),
		headOf(events.HeadRecord{SHA: shaB, Closed: true, UpdatedAt: t0.Add(time.Second), Read: true}),
	}},
	{name: "what_cannot_name_a_head_is_refused", steps: refusals()},
	{name: "a_call_whose_context_is_done_fails_and_changes_nothing", steps: []step{
		cancelled(claim(3, shaA, "m1", false, events.Claim{})),
		cancelled(approve(3, shaA, "carol")),
		cancelled(ask(3, shaA, false)),
		cancelled(recordHead(events.HeadRecord{SHA: shaA, UpdatedAt: t0}, events.HeadRecord{})),
		cancelled(see(shaA, t0, time.Time{})),
		cancelled(reruns(1, "c1", []string{"unit"}, nil)),
		buildClaim(3, shaA, claimed{}),
		approvalOf(3, approval{}),
		headOf(events.HeadRecord{}),
		see(shaA, t0.Add(time.Hour), t0.Add(time.Hour)),
		reruns(1, "c1", []string{"unit"}, map[string]int{"unit": 1}),
	}},
}

// refusals are calls with keys the registry must refuse, each as an
// invalid event, before anything is stored.
func refusals() []step {
	bad := events.Repo{Owner: "-acme", Name: "widget"}
	return []step{
		refused("ClaimBuildFor with an empty sha", func(ctx context.Context, r registry) error {
			_, err := r.ClaimBuildFor(ctx, repo, 3, "", "m1", false)
			return err
		}),
		refused("ClaimBuildFor of pull 0", func(ctx context.Context, r registry) error {
			_, err := r.ClaimBuildFor(ctx, repo, 0, shaA, "m1", false)
			return err
		}),
		refused("ClaimBuildFor of a merge group under another head's number", func(ctx context.Context, r registry) error {
			n, err := events.GroupNumber(shaA)
			if err != nil {
				return err
			}
			_, err = r.ClaimBuildFor(ctx, repo, n, shaB, "m1", false)
			return err
		}),
		refused("BuildClaim of an invalid owner", func(ctx context.Context, r registry) error {
			_, _, _, err := r.BuildClaim(ctx, bad, 3, shaA)
			return err
		}),
		refused("Approve without an approver", func(ctx context.Context, r registry) error {
			return r.Approve(ctx, repo, 3, shaA, "")
		}),
		refused("ClaimReruns by nobody", func(ctx context.Context, r registry) error {
			_, err := r.ClaimReruns(ctx, repo, 3, 1, []string{"unit"}, "")
			return err
		}),
		refused("ClaimReruns of build 0", func(ctx context.Context, r registry) error {
			_, err := r.ClaimReruns(ctx, repo, 3, 0, []string{"unit"}, "c1")
			return err
		}),
		refused("SeeHead of a short sha", func(ctx context.Context, r registry) error {
			_, err := r.SeeHead(ctx, repo, 3, "abc", t0)
			return err
		}),
		refused("ClaimComment without a digest", func(ctx context.Context, r registry) error {
			_, err := r.ClaimComment(ctx, repo, 3, 7, "", "m1")
			return err
		}),
		refused("AllowReply to an invalid user", func(ctx context.Context, r registry) error {
			_, err := r.AllowReply(ctx, repo, 3, "-x", "m1", t0, time.Hour)
			return err
		}),
		refused("RecordHead without updated_at", func(ctx context.Context, r registry) error {
			_, err := r.RecordHead(ctx, repo, 3, events.HeadRecord{SHA: shaA})
			return err
		}),
		buildClaim(3, shaA, claimed{}),
		approvalOf(3, approval{}),
		headOf(events.HeadRecord{}),
	}
}
