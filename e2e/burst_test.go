package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/projector"
)

// The burst the issue measured: this many pull requests of burstTests
// quick tests each, their webhooks sent at once, on burstBoxes workers
// (unless YCI_BURST_WORKERS says otherwise, see burstSetup).
const (
	burstPulls = 40
	burstTests = 4
	burstBoxes = 2
)

// burstSetup is what a measurement may change of BenchmarkBurst without
// editing it, read from the benchmark's own environment (never passed to
// the workers as such):
//   - YCI_BURST_WORKERS: how many workers share the burst (default 2);
//   - YCI_BURST_ENV: space-separated NAME=value settings added to every
//     worker's environment, e.g. "YCI_PULL_SLOTS=2";
//   - YCI_BURST_APP=1: the workers authenticate as a GitHub App and
//     write check runs in place of statuses;
//   - YCI_BURST_FLOOR_LANES: how many heads the floor works on at once
//     (default: the workers' test slots in all).
//
// Unset, the burst is the one the issue measured.
type burstSetup struct {
	boxes int
	env   []string
	app   bool
	// lanes is YCI_BURST_FLOOR_LANES, 0 when unset.
	lanes int
}

func burstSetupFromEnv(tb testing.TB) burstSetup {
	tb.Helper()
	setup := burstSetup{boxes: burstBoxes}
	if v := os.Getenv("YCI_BURST_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			tb.Fatalf("YCI_BURST_WORKERS=%q: want a count of workers", v)
		}
		setup.boxes = n
	}
	if v := os.Getenv("YCI_BURST_FLOOR_LANES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			tb.Fatalf("YCI_BURST_FLOOR_LANES=%q: want a count of lanes", v)
		}
		setup.lanes = n
	}
	for _, kv := range strings.Fields(os.Getenv("YCI_BURST_ENV")) {
		if name, _, ok := strings.Cut(kv, "="); !ok || name == "" {
			tb.Fatalf("YCI_BURST_ENV: %q is not NAME=value", kv)
		}
		setup.env = append(setup.env, kv)
	}
	switch v := os.Getenv("YCI_BURST_APP"); v {
	case "", "0":
	case "1":
		setup.app = true
	default:
		tb.Fatalf("YCI_BURST_APP=%q: want 1 or 0", v)
	}
	return setup
}

// floorLanes is how many heads the floor works on at once: lanes when
// set, else how many tests the workers run at once in all, each worker
// YCI_JOBS of them, as the burst's environment sets it, else as many as
// the box has cores (the worker's default -j).
func (b burstSetup) floorLanes(tb testing.TB) int {
	tb.Helper()
	if b.lanes > 0 {
		return b.lanes
	}
	jobs := runtime.NumCPU()
	for _, kv := range b.env {
		if v, ok := strings.CutPrefix(kv, "YCI_JOBS="); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				tb.Fatalf("YCI_BURST_ENV: %q: want a count of test slots", kv)
			}
			jobs = n
		}
	}
	return b.boxes * jobs
}

func (b burstSetup) String() string {
	auth := "token"
	if b.app {
		auth = "App"
	}
	return fmt.Sprintf("%d workers, %s auth, env %q", b.boxes, auth, b.env)
}

// BenchmarkBurst sends the opened webhooks of 40 pull requests of 4 quick
// tests at once to two workers, each with its own workspace, on one box,
// with the production defaults (tests in the sandbox, as many slots as
// cores, the default status hold), and measures from just before the
// first webhook until every test is final both in its build record and
// on GitHub. The workers have built one pull request before (their
// mirrors exist), as on a box that has been running. burstSetup lets a
// run change the workers, their settings and the auth.
//
// Reported: seconds-to-final, tests/s, the CPU time the workers and
// everything they started (git, python, bubblewrap, the tests) spent
// during the burst per test (worker-cpu-ms/test: on a box shared with
// other work, the time alone says little), and what GitHub was sent for the
// burst once the workers stopped (so nothing held back is still on its
// way): requests/test (every REST request), writes/test (the tests' own
// statuses or check runs) and summary-writes/head (the "yci" summary's).
// A head whose summary cost more than two writes is logged with them.
//
// Beside them, measured in the same run once the workers stopped, the
// floor of the same burst (floor.burst) as floor-seconds, and ratio,
// seconds-to-final over floor-seconds: the same heads' work with no
// service in between, neither GitHub's API nor JetStream nor a worker.
// It is one fetch into a bare mirror made before the heads were pushed,
// then for each head the files changed since its merge base with main
// (merge-base, diff-tree), a checkout of the head (floor.checkout) and
// .yci.py evaluated there by python3 in bubblewrap, and for each of its 4
// tests a checkout of its own and the test's command (.yci.py's) run by
// bash in bubblewrap. It works on as many heads at once as the workers
// have test slots in all (burstSetup.floorLanes), each head's tests one
// after the other. Unlike the workers, it makes no cgroup for its tests.
// floor-cpu-ms/test is the CPU time of its git, python, bubblewrap and
// bash processes per test, to set beside worker-cpu-ms/test: on a loaded
// box the CPU time says more than the seconds.
func BenchmarkBurst(b *testing.B) {
	setup := burstSetupFromEnv(b)
	for b.Loop() {
		b.StopTimer()
		s := newStack(b, stackOptions{noHook: true, sandbox: true})
		env := append([]string{"YCI_STATUS_HOLD=" + projector.DefaultHold.String()}, setup.env...)
		if setup.app {
			env = append(s.appEnv(), env...)
		}
		var workers []*worker
		for i := range setup.boxes {
			workers = append(workers, s.startWorker(fmt.Sprintf("box%d", i+1), env...))
		}
		fl := newFloor(s, s.warmBurst(burstTests, setup.app))
		payloads, shas := s.openBurst(burstPulls, burstTests)
		watch := s.watchRecords()
		ownBefore, childrenBefore := cpuOf(b, workers)
		b.StartTimer()
		took := s.burst(payloads, shas, watch, setup.app)
		b.StopTimer()
		ownAfter, childrenAfter := cpuOf(b, workers)
		own, children := ownAfter-ownBefore, childrenAfter-childrenBefore
		cpu := own + children
		load := s.stopAndCount(workers, shas, burstTests)
		lanes := setup.floorLanes(b)
		floorCPU := -childrenCPU(b)
		floorTook, floorTests, err := fl.burst(shas, lanes)
		floorCPU += childrenCPU(b)
		if err != nil {
			b.Fatal(err)
		}
		if floorTests != load.tests {
			b.Fatalf("the floor ran %d tests, the workers %d", floorTests, load.tests)
		}
		b.ReportMetric(took.Seconds(), "seconds-to-final")
		b.ReportMetric(float64(load.tests)/took.Seconds(), "tests/s")
		b.ReportMetric(cpu.Seconds()*1000/float64(load.tests), "worker-cpu-ms/test")
		b.ReportMetric(float64(load.requests)/float64(load.tests), "requests/test")
		b.ReportMetric(float64(load.testWrites)/float64(load.tests), "writes/test")
		b.ReportMetric(float64(load.summaryWrites)/float64(load.heads), "summary-writes/head")
		b.ReportMetric(floorTook.Seconds(), "floor-seconds")
		b.ReportMetric(took.Seconds()/floorTook.Seconds(), "ratio")
		b.ReportMetric(floorCPU.Seconds()*1000/float64(floorTests), "floor-cpu-ms/test")
		b.Logf("%d pulls x %d tests, %s: all final in %v, workers' CPU %v (their own %v, their children's %v); %s", burstPulls, burstTests, setup, took.Round(time.Millisecond),
			cpu.Round(time.Millisecond), own.Round(time.Millisecond), children.Round(time.Millisecond), load)
		b.Logf("floor: %d tests in %v on %d lanes, CPU %v", floorTests, floorTook.Round(time.Millisecond), lanes, floorCPU.Round(time.Millisecond))
		for _, sha := range shas {
			if w := s.summaryWrites(sha); len(w) > 2 {
				b.Logf("%.7s: %d summary writes: %s", sha, len(w), strings.Join(w, "; "))
			}
		}
		b.StartTimer()
	}
}

// warmBurst builds one warm-up pull request of tests quick tests to its
// end, so that every worker's mirror exists, and returns the
// repository's clone URL.
func (s *stack) warmBurst(tests int, checks bool) string {
	s.tb.Helper()
	if _, err := s.gh.Commit(owner, repoName, "main", map[string]string{"README.md": "widgets\n"}, "Initial commit"); err != nil {
		s.tb.Fatal(err)
	}
	payload, pr := s.openQuickPull("warm", tests)
	s.deliverAll([][]byte{payload})
	s.waitTestsFinal(pr.GetHead().GetSHA(), tests, checks)
	return pr.GetBase().GetRepo().GetCloneURL()
}

// openBurst opens pulls pull requests of tests quick tests without
// delivering their webhooks, and returns the opened webhooks' payloads
// and the heads. GitHub's request counts start anew.
func (s *stack) openBurst(pulls, tests int) (payloads [][]byte, shas []string) {
	s.tb.Helper()
	for p := range pulls {
		payload, pr := s.openQuickPull(fmt.Sprintf("burst-%d", p), tests)
		payloads, shas = append(payloads, payload), append(shas, pr.GetHead().GetSHA())
	}
	s.gh.ResetCounts()
	return payloads, shas
}

// openQuickPull opens a pull request from a new branch whose .yci.py
// yields tests quick tests, and returns its opened webhook and the pull
// request.
func (s *stack) openQuickPull(branch string, tests int) ([]byte, *github.PullRequest) {
	s.tb.Helper()
	files := map[string]string{".yci.py": quickMatrix(tests), "pull.txt": branch + "\n"}
	if _, err := s.gh.Commit(owner, repoName, branch, files, "Add tests"); err != nil {
		s.tb.Fatal(err)
	}
	pr, err := s.gh.OpenPull(owner, repoName, fakegithub.PullSpec{Head: branch})
	if err != nil {
		s.tb.Fatal(err)
	}
	payload, err := s.gh.PullRequestPayload(owner, repoName, pr.GetNumber(), "opened")
	if err != nil {
		s.tb.Fatal(err)
	}
	return payload, pr
}

// deliverAll sends every payload as a pull_request webhook at once, each
// from its own goroutine, and returns when the receiver accepted them all.
func (s *stack) deliverAll(payloads [][]byte) {
	s.tb.Helper()
	errs := make(chan error, len(payloads))
	var wg sync.WaitGroup
	for _, p := range payloads {
		wg.Go(func() {
			resp, _, err := fakegithub.Deliver(s.ctx, s.recv.WebhookURL, secret, "pull_request", p)
			if err == nil && resp.StatusCode != http.StatusAccepted {
				err = fmt.Errorf("answered %s", resp.Status)
			}
			if err != nil {
				errs <- fmt.Errorf("delivering a webhook: %w", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		s.tb.Fatal(err)
	}
}

// burst delivers payloads at once and returns the time from just before
// the first delivery until every test of every head in shas is final in
// its record (seen through watch) and on GitHub (as check runs when
// checks is set, else as statuses).
func (s *stack) burst(payloads [][]byte, shas []string, watch *recordWatch, checks bool) time.Duration {
	s.tb.Helper()
	start := time.Now()
	s.deliverAll(payloads)
	for _, sha := range shas {
		s.waitTestsFinal(sha, burstTests, checks)
	}
	end := time.Now()
	watch.waitFinal(shas, burstTests)
	if watch.allFinal.After(end) {
		end = watch.allFinal
	}
	return end.Sub(start)
}

// waitTestsFinal waits until tests tests of sha show a final state on
// GitHub: completed check runs when checks is set, else statuses that are
// no longer pending.
func (s *stack) waitTestsFinal(sha string, tests int, checks bool) {
	s.tb.Helper()
	if !checks {
		s.waitStatuses(sha, "final test statuses", func(m map[string]github.RepoStatus) bool {
			n := 0
			for c, st := range m {
				if strings.HasPrefix(c, "yci/") && st.GetState() != "pending" {
					n++
				}
			}
			return n == tests
		})
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	err := s.gh.WaitCheckRuns(ctx, owner, repoName, sha, func(runs []github.CheckRun) bool {
		latest := map[string]bool{}
		for _, run := range runs { // oldest first: the last of a name wins
			latest[run.GetName()] = run.GetStatus() == "completed"
		}
		n := 0
		for name, done := range latest {
			if strings.HasPrefix(name, "yci/") && done {
				n++
			}
		}
		return n == tests
	})
	if err != nil {
		s.tb.Fatalf("waiting for %d completed test check runs of %.7s: %v", tests, sha, err)
	}
}

// recordWatch follows the build records of the record bucket from before
// a burst: it sees every revision, so it knows when the last test of the
// burst became final in its record.
type recordWatch struct {
	tb      testing.TB
	ctx     context.Context
	watcher jetstream.KeyWatcher
	// final counts the final tests of each head; allFinal is when the
	// last of waitFinal's heads reached its count.
	final    map[string]int
	allFinal time.Time
}

// watchRecords starts watching the build records; the connection and the
// watch end with the test.
func (s *stack) watchRecords() *recordWatch {
	s.tb.Helper()
	nc, err := nats.Connect(s.cfg.NATSURL, nats.Timeout(10*time.Second))
	if err != nil {
		s.tb.Fatal(err)
	}
	s.tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.tb.Fatal(err)
	}
	kv, err := js.KeyValue(s.ctx, events.DefaultRecordBucket)
	if err != nil {
		s.tb.Fatal(err)
	}
	w, err := kv.Watch(s.ctx, "build.>", jetstream.UpdatesOnly())
	if err != nil {
		s.tb.Fatalf("watching the build records: %v", err)
	}
	s.tb.Cleanup(func() { w.Stop() })
	return &recordWatch{tb: s.tb, ctx: s.ctx, watcher: w, final: map[string]int{}}
}

// waitFinal reads record changes until every head in shas has tests
// final tests in its record, and notes when that happened.
func (r *recordWatch) waitFinal(shas []string, tests int) {
	r.tb.Helper()
	done := func() bool {
		for _, sha := range shas {
			if r.final[sha] < tests {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(r.ctx, waitLimit)
	defer cancel()
	for !done() {
		select {
		case <-ctx.Done():
			r.tb.Fatalf("waiting for every test's record to be final: %v (have %v)", ctx.Err(), r.final)
		case entry := <-r.watcher.Updates():
			if entry == nil || entry.Operation() != jetstream.KeyValuePut {
				continue
			}
			var rec events.BuildRecord
			if err := json.Unmarshal(entry.Value(), &rec); err != nil {
				continue
			}
			n := 0
			for _, t := range rec.Tests {
				if t.State.Final() {
					n++
				}
			}
			r.final[rec.SHA], r.allFinal = n, entry.Created()
		}
	}
}

// stopAndCount stops the workers (so that nothing they hold back is still
// on its way) and counts what GitHub was sent for heads shas of tests
// tests each since its counts were reset.
func (s *stack) stopAndCount(workers []*worker, shas []string, tests int) writeLoad {
	s.tb.Helper()
	stopCtx, stop := context.WithTimeout(s.ctx, 30*time.Second)
	defer stop()
	for _, w := range workers {
		if err := w.Stop(stopCtx); err != nil {
			s.tb.Errorf("stopping %s: %v", w.name, err)
		}
	}
	return s.countWrites(shas, tests)
}

// cpuOf is the CPU time the workers have spent so far, their own and
// their waited-for children's (git, bubblewrap, python, the tests), from
// /proc.
func cpuOf(tb testing.TB, workers []*worker) (own, children time.Duration) {
	tb.Helper()
	var ticks [2]int64
	for _, w := range workers {
		stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(w.Pid()), "stat"))
		if err != nil {
			tb.Fatalf("reading the CPU time of %s: %v", w.name, err)
		}
		// The command may hold spaces; the fields after its ")" are
		// state, ppid, ... with utime, stime, cutime, cstime the 12th to
		// the 15th.
		_, after, ok := strings.Cut(string(stat), ") ")
		fields := strings.Fields(after)
		if !ok || len(fields) < 15 {
			tb.Fatalf("/proc stat of %s: %q", w.name, stat)
		}
		for i, f := range fields[11:15] {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				tb.Fatalf("/proc stat of %s: %v", w.name, err)
			}
			ticks[i/2] += n
		}
	}
	// Linux reports these in USER_HZ, 100 on every platform Go runs on.
	return time.Duration(ticks[0]) * 10 * time.Millisecond, time.Duration(ticks[1]) * 10 * time.Millisecond
}

// childrenCPU is the CPU time the benchmark's waited-for children (and
// theirs) have spent so far: once the workers are stopped and waited for,
// what it grows by is the floor's git, bubblewrap, python and bash.
func childrenCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		tb.Fatalf("reading the CPU time of the benchmark's children: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
