package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/launch"
	"github.com/yourci/yourci/pkg/natsserver"
)

// Receiver flood: what 100 clients sending 25 MB unsigned bodies can do.
const (
	floodClients   = 100
	floodBodyBytes = 25_000_000
	// floodPeakLimit is the receiver's peak RSS the flood must stay under.
	floodPeakLimit = 256 << 20
	// floodAnswerLimit bounds the wait for a real delivery's answer during
	// the flood; reaching it fails the test. The goal is a second; the
	// measured latency is logged.
	floodAnswerLimit = 5 * time.Second
	// trickleEvery is how often a trickling client sends its next KiB.
	trickleEvery = 100 * time.Millisecond
)

// TestReceiverMemoryUnderFlood runs the real receiver, with its embedded
// JetStream (the queue in the same process, as on a box configured with
// nothing), against 100 clients: half send 25 MB bodies with a forged
// signature as fast as loopback allows, half declare 25 MB and trickle a
// KiB at a time. Meanwhile real signed deliveries must be answered and
// published, and the receiver's peak RSS (VmHWM) must stay under 256 MiB.
func TestReceiverMemoryUnderFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("the flood moves gigabytes over loopback")
	}
	dir := t.TempDir()
	cfg := launch.Config{Bin: binDir, Dir: dir, WebhookSecret: secret}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	recv, err := cfg.StartReceiver(ctx, "receiver")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := recv.Stop(ctx); err != nil {
			t.Errorf("stopping the receiver: %v\n%s", err, recv.Output())
		}
	}()
	before := vmHWM(t, recv.Pid())

	stop := make(chan struct{})
	var attackers sync.WaitGroup
	forged := &answerCounts{n: map[int]int{}}
	body := bytes.Repeat([]byte("x"), floodBodyBytes)
	for i := range floodClients {
		if i%2 == 0 {
			attackers.Go(func() { floodFast(recv.WebhookURL, body, stop, forged) })
		} else {
			attackers.Go(func() { floodTrickle(recv.Addr, stop) })
		}
	}
	// Let the flood take hold before the real deliveries. The flood's
	// length is the behaviour under test, not a wait for an event.
	time.Sleep(2 * time.Second)
	payload := openedPayload(t)
	var slowest time.Duration
	for i := range 5 {
		took, code := deliverSigned(t, recv.WebhookURL, fmt.Sprintf("flood-%d", i), payload)
		slowest = max(slowest, took)
		t.Logf("real delivery %d during the flood: %d in %s", i, code, took)
		if code != http.StatusAccepted {
			t.Errorf("real delivery %d during the flood answered %d, want 202", i, code)
		}
		time.Sleep(500 * time.Millisecond) // spread over the flood, as the behaviour under test
	}
	close(stop)
	attackers.Wait()
	peak := vmHWM(t, recv.Pid())
	t.Logf("receiver peak RSS: %d MiB before the flood, %d MiB after; slowest real delivery %s", before>>20, peak>>20, slowest)
	t.Logf("forged deliveries answered, by status: %v", forged.snapshot())
	if peak >= floodPeakLimit {
		t.Errorf("receiver peak RSS %d MiB, want under %d MiB", peak>>20, floodPeakLimit>>20)
	}
	if got := publishedDeliveries(t, filepath.Join(dir, "nats.credentials"), recv.NATSPort); got != 5 {
		t.Errorf("%d real deliveries published, want 5", got)
	}
	if forged.snapshot()[http.StatusAccepted] > 0 {
		t.Error("a forged delivery was accepted")
	}
}

// floodFast POSTs body with a forged signature, again and again, until
// stop; it counts the answers by status.
func floodFast(url string, body []byte, stop <-chan struct{}, codes *answerCounts) {
	client := &http.Client{Timeout: 30 * time.Second}
	for {
		select {
		case <-stop:
			return
		default:
		}
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("X-GitHub-Event", "pull_request")
		req.Header.Set("X-GitHub-Delivery", "forged")
		req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
		resp, err := client.Do(req)
		if err != nil {
			continue // the receiver cut the upload short
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			resp.Body.Close()
			continue
		}
		resp.Body.Close()
		codes.add(resp.StatusCode)
	}
}

// answerCounts counts answers by HTTP status, from many goroutines.
type answerCounts struct {
	mu sync.Mutex
	n  map[int]int
}

func (c *answerCounts) add(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[code]++
}

func (c *answerCounts) snapshot() map[int]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]int, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// floodTrickle declares a 25 MB body and sends it a KiB at a time until
// the receiver hangs up, then starts again, until stop.
func floodTrickle(addr string, stop <-chan struct{}) {
	kib := bytes.Repeat([]byte("x"), 1024)
	for {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			select {
			case <-stop:
				return
			case <-time.After(trickleEvery):
				continue
			}
		}
		fmt.Fprintf(conn, "POST /webhook HTTP/1.1\r\nHost: %s\r\nX-GitHub-Event: pull_request\r\nX-GitHub-Delivery: trickle\r\nX-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n",
			addr, strings.Repeat("0", 64), floodBodyBytes)
		tick := time.NewTicker(trickleEvery)
		alive := true
		for alive {
			select {
			case <-stop:
				tick.Stop()
				conn.Close()
				return
			case <-tick.C:
				if err := conn.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
					alive = false
				} else if _, err := conn.Write(kib); err != nil {
					alive = false
				}
			}
		}
		tick.Stop()
		conn.Close()
	}
}

func openedPayload(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "pkg", "webhook", "testdata", "opened.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deliverSigned POSTs a correctly signed pull_request delivery and returns
// how long the answer took and its status.
func deliverSigned(t *testing.T, url, delivery string, body []byte) (time.Duration, int) {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	start := time.Now()
	resp, err := (&http.Client{Timeout: floodAnswerLimit}).Do(req)
	if err != nil {
		t.Errorf("real delivery %s: %v", delivery, err)
		return time.Since(start), 0
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Errorf("reading the answer to %s: %v", delivery, err)
	}
	return time.Since(start), resp.StatusCode
}

// vmHWM is the peak resident set of process pid, from /proc/<pid>/status.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("parsing VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status (%v)", pid, sc.Err())
	return 0
}

// publishedDeliveries counts the pull events in the embedded JetStream,
// joining it with its credentials file as every YourCI process does.
func publishedDeliveries(t *testing.T, credentials string, port int) int {
	t.Helper()
	url, err := natsserver.Join(port, credentials)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connecting to %s: %v", events.Redact(url), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.DefaultStream)
	if err != nil {
		t.Fatalf("opening stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Msgs)
}
