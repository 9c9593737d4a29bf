package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/events"
)

func TestApprovalRecord(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		boxes := []*events.Bus{newBus(t, srv.URL(), opts), newBus(t, srv.URL(), opts)}
		ctx := testContext(t)
		repo := events.Repo{Owner: "my_org", Name: "widgets"}
		head1, head2 := strings.Repeat("1", 40), strings.Repeat("2", 40)

		t.Run("a_pull_never_approved_covers_nothing", func(t *testing.T) {
			a, err := boxes[0].Registry().ApprovalOf(ctx, repo, 1)
			if err != nil || a.Covers(head1) || a.Covers("") {
				t.Errorf("ApprovalOf = %+v, %v; want an empty record", a, err)
			}
		})
		t.Run("an_approval_covers_its_head_only_and_is_seen_by_every_box", func(t *testing.T) {
			if err := boxes[0].Registry().Approve(ctx, repo, 2, head1, "maintainer"); err != nil {
				t.Fatal(err)
			}
			a, err := boxes[1].Registry().ApprovalOf(ctx, repo, 2)
			if err != nil || !a.Covers(head1) || a.By != "maintainer" || a.Covers(head2) {
				t.Errorf("ApprovalOf = %+v, %v; want head1 approved by maintainer, head2 not", a, err)
			}
			if a, _ := boxes[1].Registry().ApprovalOf(ctx, repo, 3); a.Covers(head1) {
				t.Error("the approval of pull 2 covers pull 3")
			}
		})
		t.Run("approval_needed_is_asked_once_per_head_across_boxes", func(t *testing.T) {
			var firsts []bool
			for _, sha := range []string{head1, head1, head2, head2} {
				for _, b := range boxes {
					first, err := b.Registry().AskApproval(ctx, repo, 4, sha)
					if err != nil {
						t.Fatal(err)
					}
					firsts = append(firsts, first)
				}
			}
			want := []bool{true, false, false, false, true, false, false, false}
			for i := range want {
				if firsts[i] != want[i] {
					t.Fatalf("AskApproval firsts = %v, want %v", firsts, want)
				}
			}
			if err := boxes[0].Registry().ForgetAsked(ctx, repo, 4, head2); err != nil {
				t.Fatal(err)
			}
			if first, err := boxes[1].Registry().AskApproval(ctx, repo, 4, head2); err != nil || !first {
				t.Errorf("AskApproval after ForgetAsked = %v, %v; want true", first, err)
			}
		})
		t.Run("bad_input_is_refused", func(t *testing.T) {
			for _, err := range []error{
				boxes[0].Registry().Approve(ctx, repo, 5, head1, ""),
				boxes[0].Registry().Approve(ctx, events.Repo{Owner: "my.org", Name: "w"}, 5, head1, "m"),
				boxes[0].Registry().Approve(ctx, repo, 0, head1, "m"),
			} {
				if !errors.Is(err, events.ErrInvalidEvent) {
					t.Errorf("Approve = %v, want ErrInvalidEvent", err)
				}
			}
		})
	})
}
