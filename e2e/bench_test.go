package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/fakegithub"
)

// runsPerOp is how many webhooks one benchmark iteration measures, so
// that even -benchtime 1x gives a median of several.
const runsPerOp = 5

// BenchmarkWebhookToTestStart measures the delay from a signed webhook
// being acknowledged by the receiver (Deliver returning) to the test
// process writing its first timestamp, through JetStream, handle_pull
// (mirror fetch, checkout, .yci.py), handle_test and the test's own
// checkout, on an idle worker. It reports the median as ms-to-start, and
// beside it, measured in turns with it on the same repository, the median
// of floorScript (floor-ms), the same work as one shell script, and their
// ratio (x-floor).
func BenchmarkWebhookToTestStart(b *testing.B) {
	s := newStack(b, stackOptions{noHook: true})
	s.startWorker("worker", "YCI_JOBS=2")
	stamp := "date +%s%N > " + shellQuote(filepath.Join(s.marks, "start-")) + `"$YCI_SHA"`
	py := "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash(" + strconv.Quote(stamp) + ", name='stamp')\n"
	n, _ := s.openPull(map[string]string{".yci.py": py})
	pr, err := s.gh.Pull(owner, repoName, n)
	if err != nil {
		b.Fatal(err)
	}
	fl := newFloor(s, pr.GetBase().GetRepo().GetCloneURL())

	var samples, floors []time.Duration
	b.ResetTimer()
	for b.Loop() {
		for range runsPerOp {
			b.StopTimer()
			sha := s.push(n) // the stand-in has no hook: nothing is delivered yet
			payload, err := s.gh.PullRequestPayload(owner, repoName, n, "synchronize")
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			resp, _, err := fakegithub.Deliver(s.ctx, s.recv.WebhookURL, secret, "pull_request", payload)
			acked := time.Now()
			if err != nil || resp.StatusCode != http.StatusAccepted {
				b.Fatalf("delivering the webhook: %v %v", resp, err)
			}
			s.waitFile("start-" + sha)
			samples = append(samples, startedAt(b, filepath.Join(s.marks, "start-"+sha)).Sub(acked))
			s.waitFinal(sha, "yci/stamp")

			b.StopTimer()
			floors = append(floors, fl.measure(s.push(n)))
			b.StartTimer()
		}
	}
	webhook, shell := median(samples), median(floors)
	b.ReportMetric(float64(webhook.Microseconds())/1000, "ms-to-start")
	b.ReportMetric(float64(shell.Microseconds())/1000, "floor-ms")
	b.ReportMetric(float64(webhook)/float64(shell), "x-floor")
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// startedAt reads the nanosecond timestamp a test wrote with date +%s%N.
func startedAt(b *testing.B, path string) time.Time {
	b.Helper()
	for {
		raw, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		// The file may exist before date has written to it.
		if text := strings.TrimSpace(string(raw)); text != "" {
			ns, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				b.Fatalf("timestamp in %s: %v", path, err)
			}
			return time.Unix(0, ns)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
