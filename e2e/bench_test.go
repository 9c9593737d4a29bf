package e2e

import (
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/projector"
)

// runsPerOp is how many webhooks one benchmark iteration measures, so
// that even -benchtime 1x gives a median of several.
const runsPerOp = 5

// stampPy is the .yci.py of the benchmark: one test whose first
// instruction prints when it started.
const stampPy = "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('date +yci-start-%s%N', name='stamp')\n"

// stampRe finds the start a stamp test printed.
var stampRe = regexp.MustCompile(`yci-start-([0-9]+)`)

// BenchmarkWebhookToTestStart measures the delay from just before a signed
// webhook is sent to the receiver to the first instruction of the test it
// asks for, through JetStream, handle_pull (mirror fetch, checkout,
// .yci.py evaluated in the sandbox), handle_test and the test's own
// checkout, the test in the sandbox (bubblewrap), on an idle, warm worker.
// The GitHub stand-in answers API requests late, as GitHub does.
//
// Reported: the median as ms; beside it, measured in turns with it on the
// same repository, the median of the floor (floor.measure: the same git,
// python and bash work, python and bash in bubblewrap too) as floor-ms,
// and the median ratio of each webhook's time to the floor measured next
// to it; and, per webhook, the GitHub API reads and writes made
// between sending it and the test's start (gh-reads-before-start,
// gh-writes-before-start).
//
// Where the difference goes: prepare-ms is the median time from sending
// the webhook to the worker's "queuing tests" (the mirror fetched, the
// merge checked out, .yci.py evaluated, the build recorded; the worker's
// log stamps it to the millisecond), against floor-prepare-ms, the
// floor's git work and evaluation; start-ms is from there to the test's
// first instruction (the job published and taken, its checkout, the
// sandbox), against floor-start-ms, the floor's bash in bubblewrap.
func BenchmarkWebhookToTestStart(b *testing.B) {
	for _, bc := range []struct {
		name      string
		api       time.Duration
		write     time.Duration // negative: as api
		setsWrite bool
	}{
		{name: "api-delay-100ms", api: 100 * time.Millisecond},
		{name: "api-delay-0ms"},
		{name: "reads-100ms-writes-0ms", api: 100 * time.Millisecond, setsWrite: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchWebhookToTestStart(b, func(gh *fakegithub.Server) {
				gh.SetAPIDelay(bc.api)
				if bc.setsWrite {
					gh.SetWriteDelay(bc.write)
				}
			})
		})
	}
}

func benchWebhookToTestStart(b *testing.B, delay func(*fakegithub.Server)) {
	s := newStack(b, stackOptions{noHook: true, sandbox: true})
	// The stack sends every state for its tests' sake; the benchmark
	// holds a running state back as a worker does by default.
	s.startWorker("worker", "YCI_JOBS=2", "YCI_STATUS_HOLD="+projector.DefaultHold.String())
	n, _ := s.openPull(map[string]string{".yci.py": stampPy})
	pr, err := s.gh.Pull(owner, repoName, n)
	if err != nil {
		b.Fatal(err)
	}
	fl := newFloor(s, pr.GetBase().GetRepo().GetCloneURL())
	r := &webhookRuns{s: s, n: n}
	r.run() // warm: the worker's first build clones its mirror and learns the author's permission
	delay(s.gh)

	var samples, floors, prepared, floorPrepared, started, floorStarted []time.Duration
	var reads, writes int
	b.ResetTimer()
	for b.Loop() {
		for range runsPerOp {
			b.StopTimer()
			run := r.run()
			samples, reads, writes = append(samples, run.took), reads+run.reads, writes+run.writes
			prepared, started = append(prepared, run.prepared), append(started, run.took-run.prepared)
			fr := fl.measure(s.push(n))
			floors, floorPrepared, floorStarted = append(floors, fr.total), append(floorPrepared, fr.prepared), append(floorStarted, fr.total-fr.prepared)
			b.StartTimer()
		}
	}
	// The ratio is the median of each webhook's time over the floor
	// measured right after it: on a shared box the load drifts, and a
	// pair sees the same load where two medians may not.
	ratios := make([]float64, len(samples))
	for i := range samples {
		ratios[i] = float64(samples[i]) / float64(floors[i])
	}
	slices.Sort(ratios)
	b.ReportMetric(float64(median(samples).Microseconds())/1000, "ms")
	b.ReportMetric(float64(median(floors).Microseconds())/1000, "floor-ms")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
	for _, m := range []struct {
		unit string
		d    []time.Duration
	}{{"prepare-ms", prepared}, {"floor-prepare-ms", floorPrepared}, {"start-ms", started}, {"floor-start-ms", floorStarted}} {
		b.ReportMetric(float64(median(m.d).Microseconds())/1000, m.unit)
	}
	b.ReportMetric(float64(reads)/float64(len(samples)), "gh-reads-before-start")
	b.ReportMetric(float64(writes)/float64(len(samples)), "gh-writes-before-start")
}

// webhookRuns pushes to one pull request and delivers its webhook, one
// build at a time.
type webhookRuns struct {
	s      *stack
	n      int
	builds int
}

// webhookRun is one webhook's way to its test: the time from just before
// its delivery to the test's start (took) and to the worker's "queuing
// tests" (prepared), and the GitHub API reads and writes in between.
type webhookRun struct {
	took, prepared time.Duration
	reads, writes  int
}

// run pushes a commit, delivers its synchronize webhook and waits for its
// test to finish, and says how it went.
//
// The push waits for a new second first: GitHub stamps updated_at in
// whole seconds, and two heads of one pull in the same second make the
// head record ambiguous, which costs one read (see events.HeadRecord).
// Pushes to one pull within a second are rare on GitHub, and quick
// benchmark runs would make them the rule.
func (r *webhookRuns) run() webhookRun {
	s := r.s
	s.nextSecond()
	sha := s.push(r.n)
	payload, err := s.gh.PullRequestPayload(owner, repoName, r.n, "synchronize")
	if err != nil {
		s.tb.Fatal(err)
	}
	sent := time.Now()
	resp, _, err := fakegithub.Deliver(s.ctx, s.recv.WebhookURL, secret, "pull_request", payload)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		s.tb.Fatalf("delivering the webhook: %v %v", resp, err)
	}
	s.waitFinal(sha, "yci/stamp")
	r.builds++
	log, err := os.ReadFile(s.workspacePath("worker", owner, repoName, "pulls", strconv.Itoa(r.n), strconv.Itoa(r.builds), "stamp", "out.txt"))
	if err != nil {
		s.tb.Fatal(err)
	}
	start := stampOf(s.tb, log)
	run := webhookRun{took: start.Sub(sent), prepared: queuedAt(s.tb, s.workspacePath("worker")+".log", sha).Sub(sent)}
	for _, req := range s.gh.RequestsSince(sent) {
		switch {
		case !req.At.Before(start):
		case req.Write:
			run.writes++
		default:
			run.reads++
		}
	}
	return run
}

// queuedLineRe finds the time of a worker's "queuing tests" line for a sha.
var queuedLineRe = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg="queuing tests" .*\bsha=([0-9a-f]+)\b`)

// queuedAt is when the worker whose log is at path logged "queuing tests"
// for sha.
func queuedAt(tb testing.TB, path, sha string) time.Time {
	tb.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	for _, m := range queuedLineRe.FindAllSubmatch(text, -1) {
		if string(m[2]) != sha {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, string(m[1]))
		if err != nil {
			tb.Fatalf("time of %q: %v", m[0], err)
		}
		return at
	}
	tb.Fatalf("no \"queuing tests\" for %s in %s", sha, path)
	return time.Time{}
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// stampOf is the start a stamp test printed in out.
func stampOf(tb testing.TB, out []byte) time.Time {
	tb.Helper()
	m := stampRe.FindSubmatch(out)
	if m == nil {
		tb.Fatalf("no start stamp in:\n%s", out)
	}
	ns, err := strconv.ParseInt(string(m[1]), 10, 64)
	if err != nil {
		tb.Fatalf("start stamp %q: %v", m[1], err)
	}
	return time.Unix(0, ns)
}
