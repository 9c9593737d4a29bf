package e2e

import (
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/fakegithub"
)

// BenchmarkLastTestToSummary measures, on an idle worker with the default
// write budget, how long after a head's last test status went final its
// summary `yci` did (issue 15: branch protection waits for it). Two quick
// tests, so the summary has gone pending within the interval before the
// last one ends. It reports the median and the worst as ms-to-summary and
// max-ms-to-summary.
func BenchmarkLastTestToSummary(b *testing.B) {
	s := newStack(b, stackOptions{noHook: true})
	s.startWorker("worker", "YCI_JOBS=2")
	py := "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('true', name='a')\n    yield Bash('sleep 0.2', name='b')\n"
	n, _ := s.openPull(map[string]string{".yci.py": py})
	var samples []time.Duration
	for b.Loop() {
		for range runsPerOp {
			sha := s.push(n)
			payload, err := s.gh.PullRequestPayload(owner, repoName, n, "synchronize")
			if err != nil {
				b.Fatal(err)
			}
			resp, _, err := fakegithub.Deliver(s.ctx, s.recv.WebhookURL, secret, "pull_request", payload)
			if err != nil || resp.StatusCode != http.StatusAccepted {
				b.Fatalf("delivering the webhook: %v %v", resp, err)
			}
			s.waitFinal(sha, "yci/a", "yci/b")
			tests := time.Now()
			s.waitFinal(sha, "yci")
			samples = append(samples, time.Since(tests))
		}
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, "ms-to-summary")
	b.ReportMetric(float64(samples[len(samples)-1].Microseconds())/1000, "max-ms-to-summary")
}
