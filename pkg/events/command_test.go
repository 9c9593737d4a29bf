package events_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
)

func sampleCommand(comment int64) events.CommandEvent {
	return events.CommandEvent{
		Repo: sampleRepo, Number: 7, Installation: 42, Delivery: fmt.Sprintf("d-%d", comment),
		CommentID: comment, Author: "alice",
		Commands: []events.Command{{Kind: events.Retest}, {Kind: events.Retest, Tests: []string{"foo-x"}, Invalid: 1}},
	}
}

// sampleButton is a press of "Re-run" on check run id (or, with suite, of
// "Re-run all checks" on suite id).
func sampleButton(id int64, suite bool) events.CommandEvent {
	ev := events.CommandEvent{
		Repo: sampleRepo, Number: 7, Installation: 42, Delivery: fmt.Sprintf("b-%d", id), Author: "alice",
		Button:   &events.Button{CheckRun: id, SHA: "0123456789abcdef0123456789abcdef01234567", Build: 3},
		Commands: []events.Command{{Kind: events.RerunCheck, Tests: []string{"foo-x"}}},
	}
	if suite {
		ev.Number = 0
		ev.Button = &events.Button{CheckSuite: id, SHA: ev.Button.SHA}
		ev.Commands = []events.Command{{Kind: events.RerunSuite}}
	}
	return ev
}

func TestButtonPressesHaveTheirOwnMessageIDs(t *testing.T) {
	t.Parallel()
	run, suite, comment := sampleButton(5, false), sampleButton(5, true), sampleCommand(5)
	comment.Delivery = run.Delivery
	suite.Number = run.Number
	ids := map[string]bool{run.MsgID(): true, suite.MsgID(): true, comment.MsgID(): true}
	if len(ids) != 3 {
		t.Errorf("a check run, a suite and a comment of the same id and delivery share message ids: %v", ids)
	}
}

func TestCommandRoundTrip(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		b := newBus(t, srv.URL(), fastOptions(t))
		ctx := testContext(t)
		sent := []events.CommandEvent{sampleCommand(11), sampleButton(12, false), sampleButton(13, true)}
		// Each published twice (a redelivered webhook): queued once.
		for _, ev := range sent {
			for range 2 {
				if err := b.Queue().PublishCommand(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := streamMsgs(t, b); got != uint64(len(sent)) {
			t.Errorf("stream holds %d messages, want %d", got, len(sent))
		}
		got := make(chan *events.Delivery[events.CommandEvent], 2*len(sent))
		startConsumer(t, func(ctx context.Context) error {
			return b.Queue().ConsumeCommands(ctx, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.CommandEvent]) {
				if err := d.Ack(ctx); err != nil {
					t.Errorf("ack: %v", err)
				}
				got <- d
			})
		})
		for _, ev := range sent {
			d := receive(t, got, "command event")
			ev.Version = events.Version
			if diff := cmp.Diff(ev, d.Payload); diff != "" {
				t.Errorf("command event (-sent +received):\n%s", diff)
			}
		}
		eventually(t, "the acked command leaves the work queue", func() bool { return streamMsgs(t, b) == 0 })
	})
}

func TestPublishCommandRefusesIncompleteEvents(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		b := newBus(t, srv.URL(), fastOptions(t))
		ctx := testContext(t)
		for name, change := range map[string]func(*events.CommandEvent){
			"no_comment_id": func(e *events.CommandEvent) { e.CommentID = 0 },
			"no_author":     func(e *events.CommandEvent) { e.Author = "" },
			"no_commands":   func(e *events.CommandEvent) { e.Commands = nil },
			"no_kind":       func(e *events.CommandEvent) { e.Commands[0].Kind = "" },
			"empty_name":    func(e *events.CommandEvent) { e.Commands[1].Tests = []string{""} },
			"no_pull":       func(e *events.CommandEvent) { e.Number = 0 },
			"button_and_comment": func(e *events.CommandEvent) {
				e.Button = sampleButton(1, false).Button
				e.Commands = []events.Command{{Kind: events.RerunCheck}}
			},
		} {
			t.Run(name, func(t *testing.T) {
				ev := sampleCommand(12)
				change(&ev)
				if err := b.Queue().PublishCommand(ctx, ev); !errors.Is(err, events.ErrInvalidEvent) {
					t.Errorf("PublishCommand = %v, want ErrInvalidEvent", err)
				}
			})
		}
		for name, change := range map[string]func(*events.CommandEvent){
			"run_and_suite":         func(e *events.CommandEvent) { e.Button.CheckSuite = 9 },
			"neither_run_nor_suite": func(e *events.CommandEvent) { e.Button.CheckRun = 0 },
			"bad_sha":               func(e *events.CommandEvent) { e.Button.SHA = "HEAD" },
			"run_without_build":     func(e *events.CommandEvent) { e.Button.Build = 0 },
			"run_without_pull":      func(e *events.CommandEvent) { e.Number = 0 },
			"wrong_kind":            func(e *events.CommandEvent) { e.Commands[0].Kind = events.Retest },
			"two_commands":          func(e *events.CommandEvent) { e.Commands = append(e.Commands, e.Commands[0]) },
			"no_author":             func(e *events.CommandEvent) { e.Author = "" },
		} {
			t.Run(name, func(t *testing.T) {
				ev := sampleButton(14, false)
				change(&ev)
				if err := b.Queue().PublishCommand(ctx, ev); !errors.Is(err, events.ErrInvalidEvent) {
					t.Errorf("PublishCommand = %v, want ErrInvalidEvent", err)
				}
			})
		}
		if got := streamMsgs(t, b); got != 0 {
			t.Errorf("stream holds %d messages, want 0", got)
		}
	})
}

func TestClaimReruns(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		boxes := []*events.Bus{newBus(t, srv.URL(), opts), newBus(t, srv.URL(), opts)}
		ctx := testContext(t)
		repo := events.Repo{Owner: "my_org", Name: ".a.repo"}

		t.Run("racing_commands_get_distinct_numbers_per_test", func(t *testing.T) {
			const n = 6
			runs := make([]map[string]int, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					runs[i], errs[i] = boxes[i%2].Registry().ClaimReruns(ctx, repo, 1, 1, []string{"a", "b"}, fmt.Sprintf("command-%d", i))
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			for _, test := range []string{"a", "b"} {
				var got []int
				for _, r := range runs {
					got = append(got, r[test])
				}
				slices.Sort(got)
				if diff := cmp.Diff([]int{1, 2, 3, 4, 5, 6}, got); diff != "" {
					t.Errorf("re-run numbers of %s (-want +got):\n%s", test, diff)
				}
			}
		})

		t.Run("the_same_claimant_gets_its_numbers_again", func(t *testing.T) {
			first, err := boxes[0].Registry().ClaimReruns(ctx, repo, 1, 2, []string{"a"}, "command-x")
			if err != nil {
				t.Fatal(err)
			}
			again, err := boxes[1].Registry().ClaimReruns(ctx, repo, 1, 2, []string{"a"}, "command-x")
			if err != nil {
				t.Fatal(err)
			}
			claimed, ok, err := boxes[1].Registry().RerunsClaimed(ctx, repo, 1, 2, "command-x")
			if err != nil || !ok || !maps.Equal(claimed, first) {
				t.Errorf("RerunsClaimed(command-x) = %v, %v, %v; want %v", claimed, ok, err, first)
			}
			if _, ok, err := boxes[1].Registry().RerunsClaimed(ctx, repo, 1, 2, "command-z"); ok || err != nil {
				t.Errorf("RerunsClaimed of a claimant that claimed none = %v, %v; want none", ok, err)
			}
			other, err := boxes[1].Registry().ClaimReruns(ctx, repo, 1, 2, []string{"a", "c"}, "command-y")
			if err != nil {
				t.Fatal(err)
			}
			want := []map[string]int{{"a": 1}, {"a": 1}, {"a": 2, "c": 1}}
			if diff := cmp.Diff(want, []map[string]int{first, again, other}); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})

		t.Run("builds_are_numbered_apart", func(t *testing.T) {
			got, err := boxes[0].Registry().ClaimReruns(ctx, repo, 1, 3, []string{"a"}, "command-x")
			if err != nil {
				t.Fatal(err)
			}
			if got["a"] != 1 {
				t.Errorf("first re-run of build 3 is %d, want 1", got["a"])
			}
		})

		t.Run("refuses_incomplete_claims", func(t *testing.T) {
			for _, tc := range []struct {
				build    int
				tests    []string
				claimant string
			}{{0, []string{"a"}, "c"}, {1, nil, "c"}, {1, []string{"a"}, ""}} {
				if _, err := boxes[0].Registry().ClaimReruns(ctx, repo, 1, tc.build, tc.tests, tc.claimant); !errors.Is(err, events.ErrInvalidEvent) {
					t.Errorf("ClaimReruns(%d, %v, %q) = %v, want ErrInvalidEvent", tc.build, tc.tests, tc.claimant, err)
				}
			}
		})
	})
}

func TestRerunJobsHaveTheirOwnMessageIDs(t *testing.T) {
	t.Parallel()
	first := sampleJob("foo-x", 1)
	rerun := first
	rerun.Rerun = 1
	second := first
	second.Rerun = 2
	ids := map[string]bool{first.MsgID(): true, rerun.MsgID(): true, second.MsgID(): true}
	if len(ids) != 3 {
		t.Errorf("the first run and two re-runs share message ids: %v", ids)
	}
}
