package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

func TestCommentRecords(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		boxes := []*events.Registry{newBus(t, srv.URL(), opts).Registry(), newBus(t, srv.URL(), opts).Registry()}
		ctx := testContext(t)
		repo := events.Repo{Owner: "my_org", Name: "widgets"}
		head := strings.Repeat("a", 40)
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

		t.Run("a_head_keeps_the_time_it_was_first_seen_on_any_box", func(t *testing.T) {
			first, err := boxes[0].SeeHead(ctx, repo, 1, head, t0)
			if err != nil || !first.Equal(t0) {
				t.Fatalf("first SeeHead = %v, %v; want %v", first, err, t0)
			}
			again, err := boxes[1].SeeHead(ctx, repo, 1, head, t0.Add(time.Hour))
			if err != nil || !again.Equal(t0) {
				t.Errorf("later SeeHead on another box = %v, %v; want the first sighting %v", again, err, t0)
			}
			if _, err := boxes[0].SeeHead(ctx, repo, 1, "not-a-sha", t0); err == nil {
				t.Error("SeeHead took a key that is no sha")
			}
		})
		t.Run("a_comment_text_is_claimed_once_whatever_the_delivery", func(t *testing.T) {
			digest := events.CommandsDigest([]events.Command{{Kind: events.Retest}})
			for i, tc := range []struct {
				box      int
				claimant string
				digest   string
				want     bool
			}{
				{0, "delivery-1", digest, true},
				{1, "delivery-1", digest, true},  // the same message delivered again
				{1, "delivery-2", digest, false}, // the webhook sent again
				{0, "delivery-3", events.CommandsDigest([]events.Command{{Kind: events.Retest, Tests: []string{"a"}}}), true}, // an edit
			} {
				got, err := boxes[tc.box].ClaimComment(ctx, repo, 2, 77, tc.digest, tc.claimant)
				if err != nil || got != tc.want {
					t.Errorf("claim %d by %s = %v, %v; want %v", i, tc.claimant, got, err, tc.want)
				}
			}
		})
		t.Run("replies_to_one_person_are_allowed_once_per_period", func(t *testing.T) {
			for i, tc := range []struct {
				box      int
				user     string
				claimant string
				at       time.Duration
				want     bool
			}{
				{0, "reader", "c1", 0, true},
				{1, "reader", "c2", time.Minute, false},
				{0, "reader", "c1", 2 * time.Minute, true}, // c1 delivered again
				{1, "other", "c3", 2 * time.Minute, true},
				{1, "reader", "c4", 10 * time.Minute, true},
				{0, "reader", "c5", 11 * time.Minute, false},
			} {
				got, err := boxes[tc.box].AllowReply(ctx, repo, 3, tc.user, tc.claimant, t0.Add(tc.at), 10*time.Minute)
				if err != nil || got != tc.want {
					t.Errorf("reply %d to %s by %s = %v, %v; want %v", i, tc.user, tc.claimant, got, err, tc.want)
				}
			}
		})
	})
}
