package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/natsserver/natstest"
	"github.com/yourci/yourci/pkg/pause"
)

const (
	testSecret   = "It's a Secret to Everybody"
	testDelivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	// waitLimit bounds every wait for something to happen; reaching it is
	// a failure, never a measurement.
	waitLimit = 20 * time.Second
)

var widgets = events.Repo{Owner: "yourci-test", Name: "widgets"}

// wantEvent is what the opened.json fixture must publish.
// wantEvent is the event opened.json makes: it carries the delivered pull
// request, compacted as JSON travels.
func wantEvent(delivery string) events.PullEvent {
	var d struct {
		PullRequest json.RawMessage `json:"pull_request"`
	}
	var p struct {
		UpdatedAt time.Time `json:"updated_at"`
	}
	var pull bytes.Buffer
	body, err := os.ReadFile(filepath.Join("..", "..", "pkg", "webhook", "testdata", "opened.json"))
	if err == nil {
		err = errors.Join(json.Unmarshal(body, &d), json.Unmarshal(d.PullRequest, &p), json.Compact(&pull, d.PullRequest))
	}
	if err != nil {
		panic(err) // the fixture is the repository's own
	}
	return events.PullEvent{
		Version: events.Version, Repo: widgets, Number: 42,
		HeadSHA: "6dcb09b5b57875f334f61aebed695e2e4193db5e", Installation: 41234567, Delivery: delivery,
		Pull: pull.Bytes(), PullUpdatedAt: p.UpdatedAt.UTC(),
	}
}

func opened(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "pkg", "webhook", "testdata", "opened.json"))
	if err != nil {
		tb.Fatalf("reading fixture: %v", err)
	}
	return b
}

func testOptions(tb testing.TB) Options {
	return Options{
		Listen:          "127.0.0.1:0",
		WebhookSecret:   testSecret,
		NATS:            natsserver.Endpoint{Store: filepath.Join(tb.TempDir(), "nats"), Port: natsserver.RandomPort},
		ApprovalLabel:   "ok-to-test",
		PublishTimeout:  2 * time.Second,
		ShutdownTimeout: 10 * time.Second,
		// The smallest budget, so that tests would see a leak.
		MaxInflightBytes: 8 << 20,
	}
}

// running is a receiver serving in the background.
type running struct {
	*Receiver
	stop context.CancelFunc
	done chan error // Run's result
	url  string
}

// start runs a receiver until the test ends.
func start(t *testing.T, opts Options) *running {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	r, err := New(t.Context(), opts, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	rr := &running{Receiver: r, stop: stop, done: make(chan error, 1), url: "http://" + r.Addr()}
	go func() { rr.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-rr.done:
		case <-time.After(waitLimit):
			t.Errorf("Run did not return after its context ended")
		}
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rr
}

func sign(body []byte) string {
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

var client = &http.Client{Timeout: waitLimit}

// deliver POSTs a pull_request delivery and returns the status and body.
func deliver(t *testing.T, url, delivery, signature string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("building request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", signature)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	return resp.StatusCode, string(b)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("building request: %v", err)
	}
	return do(t, req)
}

// stream opens the receiver's JetStream stream with a connection of the
// test's own.
func stream(t *testing.T, natsURL string) jetstream.Stream {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connecting to %s: %v", natsURL, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("opening JetStream: %v", err)
	}
	s, err := js.Stream(t.Context(), events.DefaultStream)
	if err != nil {
		t.Fatalf("opening stream: %v", err)
	}
	return s
}

// queued returns the pull events stored in the stream, oldest first.
func queued(t *testing.T, natsURL string) []events.PullEvent {
	t.Helper()
	s := stream(t, natsURL)
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var out []events.PullEvent
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("reading message %d: %v", seq, err)
		}
		var ev events.PullEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("decoding message %d: %v", seq, err)
		}
		out = append(out, ev)
	}
	return out
}

func TestReceiver(t *testing.T) {
	t.Parallel()
	t.Run("signed_webhook_is_queued_before_202", func(t *testing.T) {
		t.Parallel()
		r := start(t, testOptions(t))
		body := opened(t)
		code, answer := deliver(t, r.url, testDelivery, sign(body), body)
		if code != http.StatusAccepted || !strings.Contains(answer, testDelivery) {
			t.Fatalf("answer %d %s, want 202 naming the delivery", code, answer)
		}
		if got := consumeOne(t, r.NATSURL()); !cmp.Equal(got, wantEvent(testDelivery)) {
			t.Errorf("consumed event (-want +got):\n%s", cmp.Diff(wantEvent(testDelivery), got))
		}
		bus, err := events.Connect(t.Context(), r.NATSURL(), "receiver-test", events.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("connecting bus: %v", err)
		}
		defer bus.Close()
		want := wantEvent(testDelivery)
		rec, ok, err := bus.Heads().HeadOf(t.Context(), want.Repo, want.Number)
		if err != nil || !ok || rec.SHA != want.HeadSHA || !rec.UpdatedAt.Equal(want.PullUpdatedAt) || rec.Closed {
			t.Errorf("head record = %+v, %v, %v; want the delivered head at its updated_at", rec, ok, err)
		}
	})
	t.Run("redelivered_webhook_is_queued_once", func(t *testing.T) {
		t.Parallel()
		r := start(t, testOptions(t))
		body := opened(t)
		for range 2 {
			if code, answer := deliver(t, r.url, testDelivery, sign(body), body); code != http.StatusAccepted {
				t.Fatalf("answer %d %s, want 202", code, answer)
			}
		}
		if diff := cmp.Diff([]events.PullEvent{wantEvent(testDelivery)}, queued(t, r.NATSURL())); diff != "" {
			t.Errorf("queued events (-want +got):\n%s", diff)
		}
	})
	t.Run("bad_signature_is_401_and_queues_nothing", func(t *testing.T) {
		t.Parallel()
		r := start(t, testOptions(t))
		body := opened(t)
		if code, answer := deliver(t, r.url, testDelivery, "sha256="+strings.Repeat("0", 64), body); code != http.StatusUnauthorized {
			t.Errorf("answer %d %s, want 401", code, answer)
		}
		if got := queued(t, r.NATSURL()); len(got) != 0 {
			t.Errorf("queued %v after a refused delivery", got)
		}
	})
	t.Run("healthz_and_metrics_report", func(t *testing.T) {
		t.Parallel()
		r := start(t, testOptions(t))
		if code, body := get(t, r.url+"/healthz"); code != http.StatusOK {
			t.Errorf("healthz %d %s, want 200", code, body)
		}
		body := opened(t)
		deliver(t, r.url, testDelivery, sign(body), body)
		_, metrics := get(t, r.url+"/metrics")
		for _, line := range []string{"yci_webhook_deliveries_received_total 1", "yci_webhook_deliveries_published_total 1", "go_goroutines"} {
			if !strings.Contains(metrics, line) {
				t.Errorf("metrics lack %q", line)
			}
		}
	})
	t.Run("queues_on_oldest_supported_nats_server", func(t *testing.T) {
		t.Parallel()
		srv := natstest.StartExternal(t, natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort})
		opts := testOptions(t)
		opts.NATS.URL = srv.URL()
		r := start(t, opts)
		body := opened(t)
		for range 2 {
			if code, answer := deliver(t, r.url, testDelivery, sign(body), body); code != http.StatusAccepted {
				t.Fatalf("answer %d %s from %s, want 202", code, answer, srv.Binary())
			}
		}
		if diff := cmp.Diff([]events.PullEvent{wantEvent(testDelivery)}, queued(t, r.NATSURL())); diff != "" {
			t.Errorf("queued events on %s (-want +got):\n%s", srv.Binary(), diff)
		}
	})
	t.Run("shutdown_lets_in_flight_delivery_finish", testShutdownFinishesInFlight)
	t.Run("nats_down_gives_503_and_unhealthy", testNATSDown)
}

// consumeOne takes one pull event from handle_pull the way a worker does,
// acknowledging it.
func consumeOne(t *testing.T, natsURL string) events.PullEvent {
	t.Helper()
	bus, err := events.Connect(t.Context(), natsURL, "receiver-test", events.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("connecting bus: %v", err)
	}
	defer bus.Close()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	got := make(chan events.PullEvent, 1)
	err = bus.Queue().ConsumePulls(ctx, events.NewSlots(1), func(ctx context.Context, d *events.Delivery[events.PullEvent]) {
		if err := d.Ack(ctx); err != nil {
			t.Errorf("acking: %v", err)
		}
		got <- d.Payload
		cancel()
	})
	if err != nil {
		t.Fatalf("consuming: %v", err)
	}
	select {
	case ev := <-got:
		return ev
	default:
		t.Fatalf("no event consumed within %v", waitLimit)
		return events.PullEvent{}
	}
}

func testShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	r := start(t, testOptions(t))
	body := opened(t)
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, r.url+"/webhook", pr)
	if err != nil {
		t.Fatalf("building request: %v", err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", testDelivery)
	req.Header.Set("X-Hub-Signature-256", sign(body))
	type result struct {
		code int
		err  error
	}
	answered := make(chan result, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			answered <- result{err: err}
			return
		}
		resp.Body.Close()
		answered <- result{code: resp.StatusCode}
	}()
	// Half the body is on the wire and the handler has counted the
	// delivery: it is in flight, reading the rest.
	if _, err := pw.Write(body[:len(body)/2]); err != nil {
		t.Fatalf("writing first half: %v", err)
	}
	waitMetric(t, r.url, "yci_webhook_deliveries_received_total 1")
	r.stop()
	waitRefused(t, r.Addr())
	if _, err := pw.Write(body[len(body)/2:]); err != nil {
		t.Fatalf("writing second half: %v", err)
	}
	pw.Close()

	if res := <-answered; res.err != nil || res.code != http.StatusAccepted {
		t.Fatalf("in-flight delivery answered %d, %v; want 202", res.code, res.err)
	}
	if err := <-r.done; err != nil {
		t.Errorf("Run after shutdown: %v", err)
	}
	r.done <- nil // for the cleanup
	if diff := cmp.Diff([]events.PullEvent{wantEvent(testDelivery)}, queued(t, r.NATSURL())); diff != "" {
		t.Errorf("queued events (-want +got):\n%s", diff)
	}
}

// waitMetric returns once the receiver's /metrics shows line.
func waitMetric(t *testing.T, url, line string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	if pause.Poll(ctx, 10*time.Millisecond, func() bool { _, metrics := get(t, url+"/metrics"); return strings.Contains(metrics, line) }) != nil {
		t.Fatalf("metrics never showed %q", line)
	}
}

// waitRefused returns once addr no longer accepts connections: the
// receiver has begun shutting down.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	refused := func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	}
	if pause.Poll(ctx, 10*time.Millisecond, refused) != nil {
		t.Fatalf("%s still accepts connections after shutdown began", addr)
	}
}

func testNATSDown(t *testing.T) {
	t.Parallel()
	srv, err := natsserver.Start(t.Context(), natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort})
	if err != nil {
		t.Fatalf("starting NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	opts := testOptions(t)
	opts.NATS.URL = srv.URL()
	r := start(t, opts)
	if code, body := get(t, r.url+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz with NATS up: %d %s", code, body)
	}

	srv.Shutdown()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	code := 0
	if pause.Poll(ctx, 20*time.Millisecond, func() bool { code, _ = get(t, r.url+"/healthz"); return code == http.StatusServiceUnavailable }) != nil {
		t.Fatalf("healthz still %d with NATS stopped", code)
	}
	body := opened(t)
	if code, answer := deliver(t, r.url, testDelivery, sign(body), body); code != http.StatusServiceUnavailable {
		t.Errorf("delivery with NATS down answered %d %s, want 503", code, answer)
	}
}
