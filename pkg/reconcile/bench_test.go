package reconcile_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// BenchmarkIdleSweep measures what one cron run costs when nothing needs
// doing: 10 repositories with 20 open pull requests each, every head
// commit built. Each iteration is a new Sweeper with a new cache over the
// shared bucket, as a new process would be. It reports the GitHub
// requests sent per sweep and those counted against the rate limit (all
// but 304s); ns/op is the sweep's duration against the local stand-in.
//
//	all_finished: every build's statuses are final (the usual idle state)
//	all_running:  every build's statuses are pending and its tests queued
func BenchmarkIdleSweep(b *testing.B) {
	e := newEnv(b)
	ctx := testContext(b)
	var repos []events.Repo
	type built struct {
		repo events.Repo
		pull int
		sha  string
	}
	var all []built
	for i := range 10 {
		r := repo("acme", fmt.Sprintf("repo%02d", i))
		repos = append(repos, r)
		for j, sha := range e.repoWithPulls(b, r.Owner, r.Name, 20) {
			if _, _, err := e.bus.Registry().ClaimBuild(ctx, r, j+1, sha, false); err != nil {
				b.Fatal(err)
			}
			all = append(all, built{r, j + 1, sha})
		}
	}
	run := func(b *testing.B) {
		warm, _ := e.sweeper(b, repos, nil)
		// The first sweep after a change reads what changed.
		first := sweep(b, warm)
		b.Logf("first sweep after the change: %d requests, %d counted", first.Requests.Total, first.Requests.Counted())
		e.gh.ResetCounts()
		sweeps := 0
		for b.Loop() {
			s, _ := e.sweeper(b, repos, nil)
			sum := sweep(b, s)
			if sum.Queued != 0 || sum.Pulls != 200 {
				b.Fatalf("idle sweep %+v: want 200 pulls seen, nothing queued", sum)
			}
			sweeps++
		}
		c := e.gh.Requests()
		b.ReportMetric(float64(c.Total)/float64(sweeps), "requests/sweep")
		b.ReportMetric(float64(c.Counted)/float64(sweeps), "counted/sweep")
	}

	b.Run("all_running", func(b *testing.B) {
		for _, h := range all {
			e.setStatus(b, h.repo, h.sha, "yci/foo-x", "pending")
			job := events.TestJob{Repo: h.repo, Number: h.pull, HeadSHA: h.sha, Build: 1, Attempt: 1,
				Test: events.TestSpec{Name: "foo-x", Command: "true"}, NotBefore: time.Now().Add(time.Hour)}
			if err := e.bus.Queue().PublishTest(ctx, job); err != nil {
				b.Fatal(err)
			}
		}
		run(b)
	})
	b.Run("all_finished", func(b *testing.B) {
		e.purge(b)
		for _, h := range all {
			e.setStatus(b, h.repo, h.sha, "yci/foo-x", "success")
		}
		run(b)
	})
}
