package projector

import (
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

var (
	repo    = events.Repo{Owner: "o", Name: "r"}
	build1  = target{build: events.BuildKey{Repo: repo, Pull: 1, Build: 1}}
	build2  = target{build: events.BuildKey{Repo: repo, Pull: 1, Build: 2}}
	head1   = target{head: events.HeadKey{Repo: repo, Pull: 1, SHA: "abc1234"}}
	otherPR = target{build: events.BuildKey{Repo: repo, Pull: 2, Build: 1}}
)

// targetNames lists targets as "b<pull>/<build>" or "h<pull>", sorted.
func targetNames(ts []target) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		if t.isHead() {
			out = append(out, fmt.Sprintf("h%d", t.head.Pull))
		} else {
			out = append(out, fmt.Sprintf("b%d/%d", t.build.Pull, t.build.Build))
		}
	}
	sort.Strings(out)
	return out
}

func TestScheduleTake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		parallel int
		leading  bool
		owed     []target
		busy     []target
		want     []string
	}{
		{name: "every owed target is taken while leading", parallel: 4, leading: true,
			owed: []target{build1, build2, otherPR}, want: []string{"b1/1", "b1/2", "b2/1"}},
		{name: "nothing is taken while not leading", parallel: 4, leading: false,
			owed: []target{build1, head1}, want: []string{}},
		{name: "no more than parallel at once", parallel: 1, leading: true,
			owed: []target{build1}, busy: []target{otherPR}, want: []string{}},
		{name: "a head summary waits for a build of its pull", parallel: 4, leading: true,
			owed: []target{head1, otherPR}, busy: []target{build1}, want: []string{"b2/1"}},
		{name: "a build waits for a head summary of its pull", parallel: 4, leading: true,
			owed: []target{build2}, busy: []target{head1}, want: []string{}},
		{name: "builds of one pull are written together", parallel: 4, leading: true,
			owed: []target{build2}, busy: []target{build1}, want: []string{"b1/2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSchedule(tt.parallel, time.Second, time.Minute)
			for _, k := range tt.busy {
				s.note(k, 1, true)
			}
			if got, _ := s.take(time.Now(), true); len(got) != len(tt.busy) {
				t.Fatalf("setting up: took %v, want %v", targetNames(got), targetNames(tt.busy))
			}
			for _, k := range tt.owed {
				s.note(k, 1, true)
			}
			got, _ := s.take(time.Now(), tt.leading)
			if fmt.Sprint(targetNames(got)) != fmt.Sprint(tt.want) {
				t.Errorf("took %v, want %v", targetNames(got), tt.want)
			}
			if again, _ := s.take(time.Now(), tt.leading); len(again) != 0 {
				t.Errorf("took %v a second time before finishing", targetNames(again))
			}
		})
	}
}

func TestScheduleWaitsForTheNextDue(t *testing.T) {
	t.Parallel()
	s := newSchedule(4, time.Second, time.Minute)
	if _, wait := s.take(time.Now(), true); wait != time.Hour {
		t.Errorf("with nothing owed the wait is %v, want an hour", wait)
	}
	s.note(build1, 1, true)
	now := time.Now()
	due, _ := s.take(now, true)
	s.finish(due[0], outcome{again: now.Add(3 * time.Second)})
	if due, wait := s.take(now, true); len(due) != 0 || wait != 3*time.Second {
		t.Errorf("take = %v, %v; want nothing until the look it asked for, 3s on", targetNames(due), wait)
	}
	if due, _ := s.take(now.Add(3*time.Second), true); len(due) != 1 {
		t.Errorf("took %v when the look is due, want it", targetNames(due))
	}
}

// failTimes fails k's look n times in a row and returns the backoff the
// last failure set, measured from the time around the failure.
func failTimes(t *testing.T, s *schedule, k target, n int, err error) (lo, hi time.Duration) {
	t.Helper()
	var at time.Time
	var before, after time.Time
	for range n {
		s.note(k, 1, true)
		due, _ := s.take(time.Now().Add(time.Hour), true) // past any backoff
		if len(due) != 1 {
			t.Fatalf("took %v, want %v", targetNames(due), targetNames([]target{k}))
		}
		before = time.Now()
		s.finish(k, outcome{failed: err})
		after = time.Now()
		at = s.owed[k]
	}
	return at.Sub(after), at.Sub(before)
}

func TestScheduleBackoff(t *testing.T) {
	t.Parallel()
	down := errors.New("connection refused")
	throttled := &status.RetryLaterError{After: 45 * time.Second, Err: down}
	tests := []struct {
		name     string
		failures int
		err      error
		want     time.Duration
	}{
		{"first failure waits the first backoff", 1, down, time.Second},
		{"each failure doubles it", 3, down, 4 * time.Second},
		{"up to the most", 10, down, 10 * time.Second},
		{"no sooner than GitHub asked", 1, throttled, 45 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSchedule(4, time.Second, 10*time.Second)
			lo, hi := failTimes(t, s, build1, tt.failures, tt.err)
			if tt.want < lo || tt.want > hi {
				t.Errorf("looked at again in %v to %v, want %v", lo, hi, tt.want)
			}
		})
	}
}

func TestScheduleForgetsFailuresOnceALookGoesThrough(t *testing.T) {
	t.Parallel()
	s := newSchedule(4, time.Second, 10*time.Second)
	failTimes(t, s, build1, 3, errors.New("down"))
	// A new record of a failing target keeps its backoff.
	s.note(build1, 2, true)
	if due, _ := s.take(time.Now(), true); len(due) != 0 {
		t.Fatalf("a failing target was taken before its backoff ended: %v", targetNames(due))
	}
	due, _ := s.take(time.Now().Add(time.Hour), true)
	s.finish(due[0], outcome{done: true})
	s.note(build1, 3, true)
	if due, _ := s.take(time.Now(), true); len(due) != 1 {
		t.Errorf("a target whose look went through waits on: took %v", targetNames(due))
	}
}

func TestScheduleDueNowEndsEveryWait(t *testing.T) {
	t.Parallel()
	s := newSchedule(4, time.Hour, time.Hour)
	failTimes(t, s, build1, 1, errors.New("down"))
	s.note(otherPR, 1, true)
	if due, _ := s.take(time.Now(), false); len(due) != 0 {
		t.Fatalf("took %v while not leading", targetNames(due))
	}
	s.dueNow()
	due, _ := s.take(time.Now(), true)
	if got := targetNames(due); fmt.Sprint(got) != "[b1/1 b2/1]" {
		t.Errorf("after the lease is gained took %v, want every owed target", got)
	}
}

func TestScheduleNoteForgetsWhatIsShown(t *testing.T) {
	t.Parallel()
	s := newSchedule(4, time.Second, time.Second)
	s.note(build1, 5, true)
	if got := s.seenRevision(build1); got != 5 {
		t.Errorf("seen revision %d, want 5", got)
	}
	s.note(build1, 4, true) // an older delivery does not lower it
	if got := s.seenRevision(build1); got != 5 {
		t.Errorf("seen revision %d after an older delivery, want 5", got)
	}
	s.note(build1, 6, false)
	if got := s.pending(); len(got) != 0 {
		t.Errorf("a target that owes nothing is still pending: %v", targetNames(got))
	}
	if got := s.seenRevision(build1); got != 0 {
		t.Errorf("seen revision %d of a target that owes nothing, want it forgotten", got)
	}
}
