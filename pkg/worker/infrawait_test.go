package worker

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/pause"
)

func TestInfraWait(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	since := now.Add(-time.Hour)
	full := infrastructure(InfraDisk, errors.New("no space left on device"))
	job := events.TestJob{Attempt: 2, Requeues: 3}
	waited := func(retries int) events.TestJob {
		j := job
		j.InfraSince, j.InfraRetries = since, retries
		return j
	}
	cases := []struct {
		name   string
		job    events.TestJob
		err    error
		ok     bool
		want   events.TestJob
		giveUp bool // after two hours
	}{
		{"other_errors_are_not_waited_out", job, errors.New("GitHub answered 502"), false, job, false},
		{"first_wait_starts_the_clock_and_forgets_requeues", job, full, true,
			events.TestJob{Attempt: 2, InfraSince: now, InfraRetries: 1, NotBefore: now.Add(15 * time.Second)}, false},
		{"later_waits_keep_the_clock_and_grow", waited(3), full, true,
			events.TestJob{Attempt: 2, InfraSince: since, InfraRetries: 4, NotBefore: now.Add(time.Minute)}, false},
		{"waits_are_capped", waited(100), infrastructure(InfraMirror, errors.New("fetch failed")), true,
			events.TestJob{Attempt: 2, InfraSince: since, InfraRetries: 101, NotBefore: now.Add(maxInfraDelay)}, false},
		{"past_the_bound_gives_up", func() events.TestJob { j := waited(40); j.InfraSince = now.Add(-2 * time.Hour); return j }(), full, true,
			events.TestJob{Attempt: 2, InfraSince: now.Add(-2 * time.Hour), InfraRetries: 41, NotBefore: now.Add(maxInfraDelay)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := infraWait(tc.job, tc.err, now, DefaultInfraRetryDelay)
			if diff := cmp.Diff(tc.want, got); ok != tc.ok || diff != "" {
				t.Errorf("infraWait ok %v, want %v; job (-want +got):\n%s", ok, tc.ok, diff)
			}
			if g := infraExpired(tc.job, now, 2*time.Hour); g != tc.giveUp {
				t.Errorf("infraExpired = %v, want %v", g, tc.giveUp)
			}
		})
	}
}

// withInfraBounds sets the first wait after an infrastructure error and
// how long a test waits them out.
func withInfraBounds(delay, giveUp time.Duration) func(*Options) {
	return func(o *Options) { o.InfraRetryDelay, o.InfraGiveUp = delay, giveUp }
}

// infraRig runs a test (with records and pages) while the workspace disk
// is below its floor, and returns its head commit and its build's
// directory. Space comes back when free is raised.
func infraRig(t *testing.T, free *atomic.Uint64, giveUp time.Duration) (*rig, string, string) {
	t.Helper()
	free.Store(100 << 20)
	r := newRig(t, withInfraBounds(10*time.Millisecond, giveUp), withDisk(func(string) (FSStat, error) {
		return FSStat{Size: 100 << 30, Free: free.Load()}, nil
	}))
	pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "infra-" + uniqueDigits()}, map[string]string{".yci.py": testRunning("echo hi", "", 0)})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "d1")
	dir, err := r.ws.BuildDir(artifacts.Build{Owner: owner, Repo: repoName, Pull: pr.GetNumber(), Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	return r, sha, dir
}

// An infrastructure error lasting past MaxDeliver tries (ten) does not
// end the test: each wait is a message of its own, and the test runs once
// the box recovers (issue 15).
func TestInfrastructureErrorsOutlastMaxDeliver(t *testing.T) {
	t.Parallel()
	var free atomic.Uint64
	r, sha, dir := infraRig(t, &free, time.Hour)
	tries := r.w.opts.Metrics.InfraErrors.WithLabelValues(InfraDisk)
	waitCtx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if pause.Poll(waitCtx, 20*time.Millisecond, func() bool { return counterValue(t, tries) >= 2*events.DefaultMaxDeliver }) != nil {
		t.Fatalf("only %v tries in a minute", counterValue(t, tries))
	}
	// Meanwhile the status and the page say why the test waits.
	s := r.waitFor(t, sha, func(m map[string]github.RepoStatus) bool { _, ok := m["yci/t"]; return ok })["yci/t"]
	if s.GetState() != "error" || !strings.Contains(s.GetDescription(), "infrastructure (disk), retrying") {
		t.Errorf("yci/t while waiting: %s %q", s.GetState(), s.GetDescription())
	}
	waitForFile(t, filepath.Join(dir, "index.html"), "infrastructure (disk), retrying")
	free.Store(50 << 30)
	r.waitFor(t, sha, func(m map[string]github.RepoStatus) bool { s := m["yci/t"]; return s.GetState() == "success" })
	for _, st := range r.gh.Statuses(owner, repoName, sha) {
		if d := st.GetDescription(); strings.Contains(d, "lost") || strings.Contains(d, "gave up") {
			t.Errorf("the wait used up the test's deliveries: %q", d)
		}
	}
}

// An infrastructure error that outlasts InfraGiveUp ends the test as
// error naming the cause, on GitHub and on the page.
func TestInfrastructureErrorsGiveUpAfterTheirBound(t *testing.T) {
	t.Parallel()
	var free atomic.Uint64
	r, sha, dir := infraRig(t, &free, 300*time.Millisecond)
	s := r.waitFor(t, sha, func(m map[string]github.RepoStatus) bool {
		s := m["yci/t"]
		return strings.Contains(s.GetDescription(), "gave up")
	})["yci/t"]
	d := s.GetDescription()
	if s.GetState() != "error" || !strings.HasPrefix(d, "error: gave up after ") ||
		!strings.Contains(d, "infrastructure (disk): ") || !strings.Contains(d, "100 MiB free on the workspace disk, below the floor of 1 GiB") {
		t.Errorf("yci/t: %s %q, want error naming the bound's cause", s.GetState(), d)
	}
	page := string(waitForFile(t, filepath.Join(dir, "index.html"), "gave up after"))
	if !strings.Contains(page, `class="state error"`) || !strings.Contains(page, `class="summary error"`) {
		t.Errorf("the page does not show the test and build as error:\n%s", page)
	}
	r.waitFor(t, sha, func(m map[string]github.RepoStatus) bool { s := m["yci"]; return s.GetState() == "error" })
}
