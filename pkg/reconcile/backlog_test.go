package reconcile_test

import (
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// jobsView is the questions a sweep and a cleanup ask of queued jobs.
type jobsView interface {
	PullQueued(events.Repo, int, string) bool
	HeadLive(events.Repo, int, string) bool
	BuildLive(events.Repo, int, int) bool
}

func TestBacklogSeesQueuedJobsWithoutConsumingThem(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, e *env) {
		ctx := testContext(t)
		widgets, other := repo("acme", "widgets"), repo("acme", "other")
		sha, sha2 := "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
		publish := []func() error{
			func() error {
				return e.bus.Queue().PublishPull(ctx, events.PullEvent{Repo: widgets, Number: 1, HeadSHA: sha, Delivery: "d1"})
			},
			func() error {
				return e.bus.Queue().PublishTest(ctx, events.TestJob{Repo: widgets, Number: 2, HeadSHA: sha2, Build: 3, Attempt: 1,
					Test: events.TestSpec{Name: "foo", Command: "true"}, NotBefore: time.Now().Add(time.Hour)})
			},
			func() error {
				return e.bus.Queue().PublishPull(ctx, events.PullEvent{Repo: other, Number: 7, HeadSHA: sha, Delivery: "d2"})
			},
		}
		for _, p := range publish {
			if err := p(); err != nil {
				t.Fatal(err)
			}
		}

		tests := []struct {
			name string
			repo events.Repo
			ask  func(j jobsView) bool
			want bool
		}{
			{"a_queued_pull_event", widgets, func(j jobsView) bool { return j.PullQueued(widgets, 1, sha) }, true},
			{"a_pull_event_makes_its_head_live", widgets, func(j jobsView) bool { return j.HeadLive(widgets, 1, sha) }, true},
			{"a_waiting_test_makes_its_head_live", widgets, func(j jobsView) bool { return j.HeadLive(widgets, 2, sha2) }, true},
			{"a_waiting_test_makes_its_build_live", widgets, func(j jobsView) bool { return j.BuildLive(widgets, 2, 3) }, true},
			{"another_build_is_not_live", widgets, func(j jobsView) bool { return j.BuildLive(widgets, 2, 2) }, false},
			{"a_test_is_no_pull_event", widgets, func(j jobsView) bool { return j.PullQueued(widgets, 2, sha2) }, false},
			{"another_repositorys_jobs_are_not_read", widgets, func(j jobsView) bool { return j.PullQueued(other, 7, sha) }, false},
			{"all_repositories_are_read_for_the_zero_repo", events.Repo{}, func(j jobsView) bool { return j.PullQueued(other, 7, sha) }, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				jobs, err := e.backlog.Jobs(ctx, tt.repo)
				if err != nil {
					t.Fatal(err)
				}
				if got := tt.ask(jobs); got != tt.want {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			})
		}
		if got := len(e.queued(t)); got != 2 {
			t.Errorf("stream holds %d pull events after the scans, want both still there", got)
		}
	})
}
