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
// checkout, on an idle worker. It reports the median as ms-to-start.
func BenchmarkWebhookToTestStart(b *testing.B) {
	s := newStack(b, stackOptions{noHook: true})
	s.startWorker("worker", "YCI_JOBS=2")
	stamp := "date +%s%N > " + shellQuote(filepath.Join(s.marks, "start-")) + `"$YCI_SHA"`
	py := "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash(" + strconv.Quote(stamp) + ", name='stamp')\n"
	n, _ := s.openPull(map[string]string{".yci.py": py})

	var samples []time.Duration
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
		}
	}
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, "ms-to-start")
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
