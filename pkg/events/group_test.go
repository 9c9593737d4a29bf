package events_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/natsserver"
)

func TestGroupNumber(t *testing.T) {
	t.Parallel()
	const sha = "4fd5a3c0a7f9b5d31e2c8e0f9a6b7c8d9e0f1a2b"
	n, err := events.GroupNumber(sha)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  bool
	}{
		{"is_a_group", events.IsGroup(n)},
		{"is_a_valid_build_number", events.ValidatePull(n) == nil},
		{"is_no_pull_request_number", errors.Is(events.ValidatePullRequest(n), events.ErrInvalidEvent)},
		{"pull_numbers_are_no_groups", !events.IsGroup(1) && !events.IsGroup(events.GroupBase-1)},
		{"pull_numbers_stay_valid", events.ValidatePullRequest(events.GroupBase-1) == nil},
		{"beyond_the_groups_is_invalid", events.ValidatePull(events.GroupBase+1<<36) != nil},
		{"shows_as_a_merge_group", events.DescribePull(n) == "merge group 4fd5a3c0a"},
		{"pull_shows_as_a_number", events.DescribePull(12) == "#12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.got {
				t.Errorf("%s: false for number %d", tt.name, n)
			}
		})
	}
	if _, err := events.GroupNumber("xyz"); !errors.Is(err, events.ErrInvalidEvent) {
		t.Errorf("GroupNumber(xyz) = %v", err)
	}
}

func TestValidateGroupRefs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, head, base string
		ok               bool
	}{
		{"queue_branch", "refs/heads/gh-readonly-queue/main/pr-1-0a1b", "refs/heads/main", true},
		{"head_outside_the_queue", "refs/heads/feature", "refs/heads/main", false},
		{"bare_queue_prefix", "refs/heads/gh-readonly-queue/", "refs/heads/main", false},
		{"base_is_a_tag", "refs/heads/gh-readonly-queue/main/pr-1", "refs/tags/v1", false},
		{"dotdot", "refs/heads/gh-readonly-queue/../../x", "refs/heads/main", false},
		{"control_byte", "refs/heads/gh-readonly-queue/main\n", "refs/heads/main", false},
		{"space", "refs/heads/gh-readonly-queue/ma in", "refs/heads/main", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := events.ValidateGroupRefs(tt.head, tt.base)
			if (err == nil) != tt.ok || err != nil && !errors.Is(err, events.ErrInvalidEvent) {
				t.Errorf("ValidateGroupRefs(%q, %q) = %v, want ok=%v", tt.head, tt.base, err, tt.ok)
			}
		})
	}
}

func TestPublishRefusesAGroupNumberNotItsHeads(t *testing.T) {
	t.Parallel()
	const sha = "4fd5a3c0a7f9b5d31e2c8e0f9a6b7c8d9e0f1a2b"
	n, err := events.GroupNumber(sha)
	if err != nil {
		t.Fatal(err)
	}
	srv := serverKinds[0].start(t, t.TempDir(), natsserver.RandomPort)
	bus := newBus(t, srv.URL(), fastOptions(t))
	ctx := testContext(t)
	repo := events.Repo{Owner: "o", Name: "r"}
	other := "0" + sha[1:]
	tests := []struct {
		name string
		ev   events.PullEvent
		ok   bool
	}{
		{"group_at_its_head", events.PullEvent{Repo: repo, Number: n, HeadSHA: sha, Delivery: "d"}, true},
		{"group_at_another_head", events.PullEvent{Repo: repo, Number: n, HeadSHA: other, Delivery: "d"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := bus.Queue().PublishPull(ctx, tt.ev)
			if (err == nil) != tt.ok || err != nil && !errors.Is(err, events.ErrInvalidEvent) {
				t.Errorf("PublishPull = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestLogAttrsNameAMergeGroup(t *testing.T) {
	t.Parallel()
	const sha = "4fd5a3c0a7f9b5d31e2c8e0f9a6b7c8d9e0f1a2b"
	n, err := events.GroupNumber(sha)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		attrs []any
		want  bool
	}{
		{"group_event", events.PullEvent{Number: n, HeadSHA: sha}.LogAttrs(), true},
		{"group_test", events.TestJob{Number: n, HeadSHA: sha}.LogAttrs(), true},
		{"pull_event", events.PullEvent{Number: 12, HeadSHA: sha}.LogAttrs(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fmt.Sprint(tt.attrs...)
			if strings.Contains(got, "merge_group=merge group 4fd5a3c0a") != tt.want {
				t.Errorf("attrs %s, want merge_group %v", got, tt.want)
			}
		})
	}
}

// TestGroupMessagesCarryGroupVersion publishes a merge group's pull event
// and test job beside a pull's, and reads the versions they arrive with:
// GroupVersion, which a worker from before merge groups terminates, for
// the group's; Version for the pull's, which every worker reads.
func TestGroupMessagesCarryGroupVersion(t *testing.T) {
	t.Parallel()
	const sha = "4fd5a3c0a7f9b5d31e2c8e0f9a6b7c8d9e0f1a2b"
	group, err := events.GroupNumber(sha)
	if err != nil {
		t.Fatal(err)
	}
	srv := serverKinds[0].start(t, t.TempDir(), natsserver.RandomPort)
	b := newBus(t, srv.URL(), fastOptions(t))
	ctx := testContext(t)
	pull, groupEv := samplePull(7, "abc123"), samplePull(group, sha)
	job := sampleJob("unit", 1)
	job.Number, job.HeadSHA = group, sha
	for _, err := range []error{b.Queue().PublishPull(ctx, pull), b.Queue().PublishPull(ctx, groupEv), b.Queue().PublishTest(ctx, job)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	slots := events.NewSlots(2)
	pulls := make(chan events.PullEvent, 2)
	jobs := make(chan events.TestJob, 1)
	startPulls(t, b, slots, func(ctx context.Context, d *events.Delivery[events.PullEvent]) {
		if err := d.Ack(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
		pulls <- d.Payload
	})
	startTests(t, b, slots, func(ctx context.Context, d *events.Delivery[events.TestJob]) {
		if err := d.Ack(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
		jobs <- d.Payload
	})
	want := map[int]int{7: events.Version, group: events.GroupVersion}
	for range 2 {
		ev := receive(t, pulls, "pull event")
		if ev.Version != want[ev.Number] {
			t.Errorf("pull event %s has version %d, want %d", events.DescribePull(ev.Number), ev.Version, want[ev.Number])
		}
	}
	if got := receive(t, jobs, "test job"); got.Version != events.GroupVersion {
		t.Errorf("merge group's test job has version %d, want %d", got.Version, events.GroupVersion)
	}
}
