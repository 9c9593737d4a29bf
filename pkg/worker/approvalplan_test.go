package worker

import (
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/events"
)

// The approval gate's decision, in memory: no NATS, GitHub or git. The
// real-process tests (approval_test.go, policy_test.go) cover the wiring
// that gathers its facts.

// gateWorld is what the gate's facts would be found to be: who may write,
// the approval record, and who added the label after YourCI asked.
type gateWorld struct {
	writers     map[string]bool
	record      events.Approval
	lateLabeler string
}

// runGate drives planApproval as approvalGate.judge does, answering each
// fact from w and recording approvals in w.record as the registry would.
// It returns the verdict, the facts asked for in order, and the approvers
// recorded.
func runGate(t *testing.T, f approvalFacts, author string, w gateWorld) (verdict, string, []string) {
	t.Helper()
	f.recorded = map[string]bool{}
	var asked, recorded []string
	yes := func(v bool) *bool { return &v }
	for range maxGateSteps {
		s := planApproval(f)
		switch {
		case s.need != gateNone:
			asked = append(asked, s.need.String())
			switch s.need {
			case gateLabelerWrites:
				f.labelerWrites = yes(w.writers[f.labeledBy])
			case gateRecord:
				rec := w.record
				f.record = &rec
			case gateAuthorWrites:
				f.authorWrites = yes(w.writers[author])
			case gateLateLabeler:
				by := w.lateLabeler
				f.lateLabeler = &by
			case gateLateWrites:
				f.lateWrites = yes(w.writers[*f.lateLabeler])
			}
		case s.approver != "":
			if !w.writers[s.approver] {
				t.Fatalf("the plan records an approval by %q, who may not write", s.approver)
			}
			recorded = append(recorded, s.approver)
			f.recorded[s.approver] = true
			w.record.SHA, w.record.By = f.sha, s.approver
		default:
			return s.verdict, strings.Join(asked, ","), recorded
		}
	}
	t.Fatalf("the plan did not decide within %d steps; asked %v", maxGateSteps, asked)
	return verdict{}, "", nil
}

func TestPlanApproval(t *testing.T) {
	t.Parallel()
	const head, older = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	writers := map[string]bool{"alice": true, "maintainer": true}
	cases := []struct {
		name   string
		f      approvalFacts
		author string
		world  gateWorld

		want     verdict
		asked    string
		recorded string
	}{
		{name: "build_all_asks_nothing", f: approvalFacts{policy: BuildAll}, author: "mallory",
			want: verdict{build: true}},
		{name: "merge_group_passes_without_the_gate", f: approvalFacts{group: true}, author: "mallory",
			want: verdict{build: true}},
		{name: "writer_author_builds", author: "alice",
			want: verdict{build: true}, asked: "approval record,author writes"},
		{name: "outsider_waits", author: "mallory",
			want: verdict{}, asked: "approval record,author writes"},
		{name: "outsider_already_asked_still_waits", author: "mallory", world: gateWorld{record: events.Approval{Asked: head}},
			want: verdict{asked: true}, asked: "approval record,author writes"},
		{name: "approved_head_builds_without_reading_permissions", author: "mallory",
			world: gateWorld{record: events.Approval{SHA: head, By: "maintainer", Asked: head}},
			want:  verdict{build: true, by: "maintainer", asked: true}, asked: "approval record"},
		{name: "approval_of_an_older_head_does_not_cover_a_new_push", author: "mallory",
			world: gateWorld{record: events.Approval{SHA: older, By: "maintainer", Asked: older}},
			want:  verdict{}, asked: "approval record,author writes"},
		{name: "label_webhook_from_a_writer_approves_this_head", author: "mallory",
			f:    approvalFacts{labeled: true, labeledBy: "maintainer"},
			want: verdict{build: true, by: "maintainer"}, asked: "labeler writes,approval record", recorded: "maintainer"},
		{name: "label_webhook_from_an_outsider_is_ignored", author: "mallory",
			f:    approvalFacts{labeled: true, labeledBy: "mallory"},
			want: verdict{}, asked: "labeler writes,approval record,author writes"},
		{name: "label_removed_since_its_webhook_does_not_count", author: "mallory",
			f:    approvalFacts{labeledBy: "maintainer"},
			want: verdict{}, asked: "approval record,author writes"},
		{name: "late_label_by_a_writer_after_asking_approves", author: "mallory", f: approvalFacts{labeled: true},
			world: gateWorld{record: events.Approval{Asked: head}, lateLabeler: "maintainer"},
			want:  verdict{build: true, by: "maintainer", asked: true},
			asked: "approval record,author writes,late labeler,late labeler writes", recorded: "maintainer"},
		{name: "late_label_by_an_outsider_is_ignored", author: "mallory", f: approvalFacts{labeled: true},
			world: gateWorld{record: events.Approval{Asked: head}, lateLabeler: "mallory"},
			want:  verdict{asked: true}, asked: "approval record,author writes,late labeler,late labeler writes"},
		{name: "late_label_nobody_can_name_waits", author: "mallory", f: approvalFacts{labeled: true},
			world: gateWorld{record: events.Approval{Asked: head}},
			want:  verdict{asked: true}, asked: "approval record,author writes,late labeler"},
		{name: "label_before_any_request_is_not_looked_up", author: "mallory", f: approvalFacts{labeled: true},
			world: gateWorld{record: events.Approval{Asked: older}, lateLabeler: "maintainer"},
			want:  verdict{}, asked: "approval record,author writes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.f.sha = head
			tc.world.writers = writers
			got, asked, recorded := runGate(t, tc.f, tc.author, tc.world)
			if got != tc.want {
				t.Errorf("verdict %+v, want %+v", got, tc.want)
			}
			if asked != tc.asked {
				t.Errorf("asked for %q, want %q", asked, tc.asked)
			}
			if r := strings.Join(recorded, ","); r != tc.recorded {
				t.Errorf("recorded approvals by %q, want %q", r, tc.recorded)
			}
		})
	}
}
