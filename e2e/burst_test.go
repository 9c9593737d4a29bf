package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
// quick tests each, their webhooks sent at once, on burstBoxes workers.
const (
	burstPulls = 40
	burstTests = 4
	burstBoxes = 2
)

// BenchmarkBurst sends the opened webhooks of 40 pull requests of 4 quick
// tests at once to two workers, each with its own workspace, on one box,
// with the production defaults (tests in the sandbox, as many slots as
// cores, the default status hold), and measures from just before the
// first webhook until every test is final both in its build record and
// on GitHub. The workers have built one pull request before (their
// mirrors exist), as on a box that has been running.
//
// Reported: seconds-to-final, tests/s, the CPU time the workers and
// everything they started (git, python, bubblewrap, the tests) spent
// during the burst per test (worker-cpu-ms/test: on a box shared with
// other work, the time alone says little), and what GitHub was sent for the
// burst once the workers stopped (so nothing held back is still on its
// way): requests/test (every REST request), writes/test (the tests' own
// statuses) and summary-writes/head (the "yci" summary's).
func BenchmarkBurst(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		s := newStack(b, stackOptions{noHook: true, sandbox: true})
		var workers []*worker
		for i := range burstBoxes {
			workers = append(workers, s.startWorker(fmt.Sprintf("box%d", i+1), "YCI_STATUS_HOLD="+projector.DefaultHold.String()))
		}
		payloads, shas := s.openBurst(burstPulls, burstTests)
		watch := s.watchRecords()
		cpu := -cpuOf(b, workers)
		b.StartTimer()
		took := s.burst(payloads, shas, watch)
		b.StopTimer()
		cpu += cpuOf(b, workers)
		load := s.stopAndCount(workers, shas, burstTests)
		b.ReportMetric(took.Seconds(), "seconds-to-final")
		b.ReportMetric(float64(load.tests)/took.Seconds(), "tests/s")
		b.ReportMetric(cpu.Seconds()*1000/float64(load.tests), "worker-cpu-ms/test")
		b.ReportMetric(float64(load.requests)/float64(load.tests), "requests/test")
		b.ReportMetric(float64(load.testWrites)/float64(load.tests), "writes/test")
		b.ReportMetric(float64(load.summaryWrites)/float64(load.heads), "summary-writes/head")
		b.Logf("%d pulls x %d tests on %d workers: all final in %v, workers' CPU %v; %s", burstPulls, burstTests, burstBoxes, took.Round(time.Millisecond), cpu.Round(time.Millisecond), load)
		b.StartTimer()
	}
}

// openBurst builds one warm-up pull request to its end (so that every
// worker's mirror exists), then opens pulls pull requests of tests quick
// tests without delivering their webhooks, and returns the opened
// webhooks' payloads and the heads. GitHub's request counts start anew.
func (s *stack) openBurst(pulls, tests int) (payloads [][]byte, shas []string) {
	s.tb.Helper()
	if _, err := s.gh.Commit(owner, repoName, "main", map[string]string{"README.md": "widgets\n"}, "Initial commit"); err != nil {
		s.tb.Fatal(err)
	}
	var warm []string
	for i := range tests {
		warm = append(warm, fmt.Sprintf("yci/t%d", i+1))
	}
	warmPayload, warmSHA := s.openQuickPull("warm", tests)
	s.deliverAll([][]byte{warmPayload})
	s.waitFinal(warmSHA, warm...)
	for p := range pulls {
		payload, sha := s.openQuickPull(fmt.Sprintf("burst-%d", p), tests)
		payloads, shas = append(payloads, payload), append(shas, sha)
	}
	s.gh.ResetCounts()
	return payloads, shas
}

// openQuickPull opens a pull request from a new branch whose .yci.py
// yields tests quick tests, and returns its opened webhook and head.
func (s *stack) openQuickPull(branch string, tests int) ([]byte, string) {
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
	return payload, pr.GetHead().GetSHA()
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
// its record (seen through watch) and on GitHub.
func (s *stack) burst(payloads [][]byte, shas []string, watch *recordWatch) time.Duration {
	s.tb.Helper()
	start := time.Now()
	s.deliverAll(payloads)
	final := func(m map[string]github.RepoStatus) bool {
		n := 0
		for c, st := range m {
			if strings.HasPrefix(c, "yci/") && st.GetState() != "pending" {
				n++
			}
		}
		return n == burstTests
	}
	for _, sha := range shas {
		s.waitStatuses(sha, "final test statuses", final)
	}
	end := time.Now()
	watch.waitFinal(shas, burstTests)
	if watch.allFinal.After(end) {
		end = watch.allFinal
	}
	return end.Sub(start)
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
	load := writeLoad{heads: len(shas), tests: len(shas) * tests, requests: s.gh.Requests().Total}
	for _, sha := range shas {
		for _, st := range s.gh.Statuses(owner, repoName, sha) {
			if st.GetContext() == "yci" {
				load.summaryWrites++
			} else {
				load.testWrites++
			}
		}
	}
	return load
}

// cpuOf is the CPU time the workers and their waited-for children (git,
// bubblewrap, python, the tests) have spent so far, from /proc.
func cpuOf(tb testing.TB, workers []*worker) time.Duration {
	tb.Helper()
	var ticks int64
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
		for _, f := range fields[11:15] {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				tb.Fatalf("/proc stat of %s: %v", w.name, err)
			}
			ticks += n
		}
	}
	// Linux reports these in USER_HZ, 100 on every platform Go runs on.
	return time.Duration(ticks) * 10 * time.Millisecond
}
