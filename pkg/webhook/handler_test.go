package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/yourci/yourci/pkg/events"
)

const testSecret = "It's a Secret to Everybody"

// recorder is an in-memory Publisher that records what it was asked to
// publish and fails on demand.
type recorder struct {
	mu        sync.Mutex
	published []events.PullEvent
	// fail, when set, is returned instead of publishing.
	fail error
	// block makes PublishPull wait for its context to end, like a
	// JetStream that never acknowledges.
	block bool
}

func (r *recorder) PublishPull(ctx context.Context, ev events.PullEvent) error {
	if r.block {
		<-ctx.Done()
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err // as JetStream does: no time is left to wait for its ack
	}
	if r.fail != nil {
		return r.fail
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.published = append(r.published, ev)
	return nil
}

func (r *recorder) events() []events.PullEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.PullEvent(nil), r.published...)
}

// signature computes GitHub's X-Hub-Signature-256 header value.
func signature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// request describes a request for the handler.
type request struct {
	method    string
	event     string // X-GitHub-Event; "" leaves the header out
	delivery  string // X-GitHub-Delivery; "" leaves the header out
	body      []byte
	signature string // X-Hub-Signature-256; "" leaves the header out
	chunked   bool   // hide the length, as a chunked upload does
}

// signed is a correctly signed POST of body as event.
func signed(event string, body []byte) request {
	return request{method: http.MethodPost, event: event, delivery: testDelivery, body: body, signature: signature(testSecret, body)}
}

func (rq request) build() *http.Request {
	method := rq.method
	if method == "" {
		method = http.MethodPost
	}
	r := httptest.NewRequest(method, "/webhook", bytes.NewReader(rq.body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "GitHub-Hookshot/044aadd")
	for k, v := range map[string]string{"X-GitHub-Event": rq.event, "X-GitHub-Delivery": rq.delivery, "X-Hub-Signature-256": rq.signature} {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	if rq.chunked {
		r.ContentLength = -1
	}
	return r
}

func newTestHandler(tb testing.TB, pub Publisher, opts ...Option) http.Handler {
	tb.Helper()
	opts = append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	h, err := NewHandler(testSecret, pub, opts...)
	if err != nil {
		tb.Fatalf("NewHandler: %v", err)
	}
	return h
}

func TestHandler(t *testing.T) {
	t.Parallel()
	opened := fixture(t, "opened.json")
	huge := bytes.Repeat([]byte(" "), MaxBodyBytes+1)
	tests := []struct {
		name     string
		req      func(testing.TB) request
		pub      *recorder
		opts     []Option
		code     int
		answer   string // a substring of the body
		want     []events.PullEvent
		bodyKind string // "result" or "error"
	}{
		{name: "ping_answers_200", req: func(tb testing.TB) request { return signed("ping", fixture(tb, "ping.json")) },
			code: 200, answer: "pong", bodyKind: "result"},
		{name: "malformed_comment_is_ignored_with_202", opts: []Option{WithCommands(&commandRecorder{})},
			req:  func(testing.TB) request { return signed("issue_comment", []byte(`{"action": "created"`)) },
			code: 202, answer: `ignored: event \"issue_comment\"`, bodyKind: "result"},
		{name: "malformed_check_run_is_ignored_with_202", opts: []Option{WithCommands(&commandRecorder{})},
			req:  func(testing.TB) request { return signed("check_run", []byte(`{"action": `)) },
			code: 202, answer: `ignored: event \"check_run\"`, bodyKind: "result"},
		{name: "malformed_ping_is_400", req: func(testing.TB) request { return signed("ping", []byte(`{"zen": "Keep it`)) },
			code: 400, answer: "malformed ping payload", bodyKind: "error"},
		{name: "opened_is_published_then_202", req: func(testing.TB) request { return signed("pull_request", opened) },
			code: 202, answer: "queued", bodyKind: "result", want: []events.PullEvent{widgets(42, head1)}},
		{name: "synchronize_publishes_new_head", req: func(tb testing.TB) request { return signed("pull_request", fixture(tb, "synchronize.json")) },
			code: 202, answer: "queued", bodyKind: "result", want: []events.PullEvent{widgets(42, head2)}},
		{name: "fork_publishes_base_repository", req: func(tb testing.TB) request { return signed("pull_request", fixture(tb, "opened_fork.json")) },
			code: 202, answer: "queued", bodyKind: "result", want: []events.PullEvent{widgets(57, "c0ffee0123456789abcdef0123456789abcdef01")}},
		{name: "approval_label_publishes", req: func(tb testing.TB) request { return signed("pull_request", fixture(tb, "labeled_ok_to_test.json")) },
			code: 202, answer: "queued", bodyKind: "result", want: []events.PullEvent{labeledBy(widgets(42, head2), "maintainer-jane")}},
		{name: "configured_approval_label_publishes", opts: []Option{WithApprovalLabel("bug")},
			req:  func(tb testing.TB) request { return signed("pull_request", fixture(tb, "labeled_bug.json")) },
			code: 202, answer: "queued", bodyKind: "result", want: []events.PullEvent{labeledBy(widgets(42, head2), "maintainer-jane")}},
		{name: "closed_is_ignored_with_202", req: func(tb testing.TB) request { return signed("pull_request", fixture(tb, "closed.json")) },
			code: 202, answer: `ignored: action \"closed\"`, bodyKind: "result"},
		{name: "edited_title_is_ignored_with_202", req: func(tb testing.TB) request { return signed("pull_request", fixture(tb, "edited_title.json")) },
			code: 202, answer: "ignored: action edited without a base branch change", bodyKind: "result"},
		{name: "other_label_is_ignored_with_202", req: func(tb testing.TB) request { return signed("pull_request", fixture(tb, "labeled_bug.json")) },
			code: 202, answer: `ignored: label \"bug\"`, bodyKind: "result"},
		{name: "other_event_is_ignored_with_202", req: func(testing.TB) request {
			return signed("push", []byte(`{"ref":"refs/heads/main","after":"`+head1+`"}`))
		},
			code: 202, answer: `ignored: event \"push\"`, bodyKind: "result"},
		{name: "event_unknown_to_library_is_ignored_with_202", req: func(testing.TB) request { return signed("deployment", []byte(`{"action":"created"}`)) },
			code: 202, answer: `ignored: event \"deployment\"`, bodyKind: "result"},
		{name: "merge_group_without_its_group_is_400", req: func(testing.TB) request { return signed("merge_group", []byte(`{"action":"checks_requested"}`)) },
			code: 400, answer: "merge_group is not an object", bodyKind: "error"},
		{name: "other_event_with_undecodable_body_is_ignored_with_202", req: func(testing.TB) request { return signed("issues", []byte(`{"issue": 5}`)) },
			code: 202, answer: `ignored: event \"issues\"`, bodyKind: "result"},
		{name: "bad_signature_publishes_nothing", req: func(testing.TB) request {
			rq := signed("pull_request", opened)
			rq.signature = signature("another secret", opened)
			return rq
		}, code: 401, answer: "signature verification failed", bodyKind: "error"},
		{name: "missing_signature_publishes_nothing", req: func(testing.TB) request {
			rq := signed("pull_request", opened)
			rq.signature = ""
			return rq
		}, code: 401, answer: "signature verification failed", bodyKind: "error"},
		{name: "signature_of_other_body_publishes_nothing", req: func(tb testing.TB) request {
			rq := signed("pull_request", opened)
			rq.signature = signature(testSecret, fixture(tb, "closed.json"))
			return rq
		}, code: 401, bodyKind: "error"},
		{name: "unsigned_ping_is_refused", req: func(tb testing.TB) request {
			rq := signed("ping", fixture(tb, "ping.json"))
			rq.signature = ""
			return rq
		}, code: 401, bodyKind: "error"},
		{name: "unsigned_other_event_is_refused_not_ignored", req: func(testing.TB) request {
			rq := signed("merge_group", []byte(`{}`))
			rq.signature = "sha256=00"
			return rq
		}, code: 401, bodyKind: "error"},
		{name: "oversize_body_is_413", req: func(testing.TB) request { return signed("pull_request", huge) },
			code: 413, answer: "body too large", bodyKind: "error"},
		{name: "oversize_chunked_body_is_413", req: func(testing.TB) request {
			rq := signed("pull_request", huge)
			rq.chunked = true
			return rq
		}, code: 413, answer: "body too large", bodyKind: "error"},
		{name: "malformed_json_is_400", req: func(testing.TB) request { return signed("pull_request", []byte(`{"action": "opened", "number": 4`)) },
			code: 400, answer: "malformed pull_request payload", bodyKind: "error"},
		{name: "truncated_payload_is_400", req: func(testing.TB) request { return signed("pull_request", opened[:len(opened)/2]) },
			code: 400, answer: "malformed", bodyKind: "error"},
		{name: "empty_body_is_400", req: func(testing.TB) request { return signed("pull_request", nil) },
			code: 400, answer: "body is empty", bodyKind: "error"},
		{name: "missing_event_header_is_400", req: func(testing.TB) request { return signed("", opened) },
			code: 400, answer: "X-GitHub-Event is missing", bodyKind: "error"},
		{name: "missing_delivery_header_is_400", req: func(testing.TB) request {
			rq := signed("pull_request", opened)
			rq.delivery = ""
			return rq
		}, code: 400, answer: "X-GitHub-Delivery is missing", bodyKind: "error"},
		{name: "nats_special_characters_in_name_are_400", req: func(tb testing.TB) request {
			return signed("pull_request", mutated(tb, "opened.json", func(m map[string]any) { obj(m, "repository")["name"] = "a.*.>" }))
		}, code: 400, answer: "repository.name", bodyKind: "error"},
		{name: "get_is_405", req: func(testing.TB) request {
			rq := signed("pull_request", nil)
			rq.method = http.MethodGet
			return rq
		}, code: 405, bodyKind: "error"},
		{name: "publish_failure_is_503", pub: &recorder{fail: errors.New("nats: no responders available for request")},
			req:  func(testing.TB) request { return signed("pull_request", opened) },
			code: 503, answer: "event queue unavailable", bodyKind: "error"},
		{name: "event_the_queue_refuses_is_400", pub: &recorder{fail: fmt.Errorf("empty head sha: %w", events.ErrInvalidEvent)},
			req:  func(testing.TB) request { return signed("pull_request", opened) },
			code: 400, answer: "invalid event", bodyKind: "error"},
		{name: "publish_without_ack_is_503", pub: &recorder{block: true}, opts: []Option{WithPublishTimeout(20 * time.Millisecond)},
			req:  func(testing.TB) request { return signed("pull_request", opened) },
			code: 503, answer: "event queue unavailable", bodyKind: "error"},
		{name: "ignored_action_does_not_touch_a_failing_queue", pub: &recorder{fail: errors.New("down")},
			req:  func(tb testing.TB) request { return signed("pull_request", fixture(tb, "closed.json")) },
			code: 202, answer: "ignored", bodyKind: "result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := tt.pub
			if pub == nil {
				pub = &recorder{}
			}
			h := newTestHandler(t, pub, tt.opts...)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req(t).build())

			if w.Code != tt.code {
				t.Errorf("status %d, want %d; body %s", w.Code, tt.code, w.Body)
			}
			var a map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
				t.Fatalf("answer is not JSON: %v: %s", err, w.Body)
			}
			if a[tt.bodyKind] == "" || !strings.Contains(w.Body.String(), tt.answer) {
				t.Errorf("answer %s lacks %s %q", w.Body, tt.bodyKind, tt.answer)
			}
			// What the event carries of the pull request: TestPullEventFrom.
			if diff := cmp.Diff(tt.want, pub.events(), cmpopts.IgnoreFields(events.PullEvent{}, "Pull", "PullUpdatedAt")); diff != "" {
				t.Errorf("published events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHandlerAnswerNamesDelivery(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	newTestHandler(t, &recorder{}).ServeHTTP(w, signed("pull_request", fixture(t, "opened.json")).build())
	want := answer{Delivery: testDelivery, Result: "queued"}
	var got answer
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("decoding answer: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestNewHandlerRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret string
		pub    Publisher
		opts   []Option
	}{
		{"empty_secret", "", &recorder{}, nil},
		{"no_publisher", testSecret, nil, nil},
		{"zero_publish_timeout", testSecret, &recorder{}, []Option{WithPublishTimeout(0)}},
		{"nil_logger", testSecret, &recorder{}, []Option{WithLogger(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if h, err := NewHandler(tt.secret, tt.pub, tt.opts...); err == nil {
				t.Errorf("NewHandler = %v, nil; want an error", h)
			}
		})
	}
}

func TestHandlerLogsOneLinePerDelivery(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := newTestHandler(t, &recorder{}, WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
	h.ServeHTTP(httptest.NewRecorder(), signed("pull_request", fixture(t, "synchronize.json")).build())
	bad := signed("pull_request", fixture(t, "opened.json"))
	bad.signature = "sha256=beef"
	h.ServeHTTP(httptest.NewRecorder(), bad.build())

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines for 2 deliveries:\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	for i, dst := range []*map[string]any{&first, &second} {
		if err := json.Unmarshal([]byte(lines[i]), dst); err != nil {
			t.Fatalf("log line %d: %v", i, err)
		}
	}
	want := map[string]any{
		"delivery": testDelivery, "event": "pull_request", "action": "synchronize", "outcome": "published",
		"repo": "yourci-test/widgets", "pull": float64(42), "sha": head2, "status": float64(202), "level": "INFO",
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("published line: %s = %v, want %v", k, first[k], v)
		}
	}
	if second["outcome"] != "refused" || second["level"] != "WARN" || second["err"] == nil {
		t.Errorf("refused line lacks outcome, level or error: %s", lines[1])
	}
}

func TestMetricsCountDeliveries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Errorf("second NewMetrics on one registry succeeded")
	}
	h := newTestHandler(t, &recorder{}, WithMetrics(m))
	unsigned := signed("pull_request", fixture(t, "opened.json"))
	unsigned.signature = ""
	for _, rq := range []request{
		signed("pull_request", fixture(t, "opened.json")),
		signed("pull_request", fixture(t, "closed.json")),
		unsigned,
		signed("pull_request", []byte("{")),
	} {
		h.ServeHTTP(httptest.NewRecorder(), rq.build())
	}
	got := gathered(t, reg)
	want := map[string]float64{
		"yci_webhook_deliveries_received_total":                       4,
		"yci_webhook_deliveries_published_total":                      1,
		"yci_webhook_deliveries_ignored_total":                        1,
		`yci_webhook_deliveries_refused_total{reason="unauthorized"}`: 1,
		`yci_webhook_deliveries_refused_total{reason="bad_request"}`:  1,
		`yci_webhook_deliveries_refused_total{reason="unavailable"}`:  0,
		`yci_webhook_delivery_duration_seconds_count{code="202"}`:     2,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// gathered flattens a registry's counters and histogram counts into
// "name{label="value"}" keys.
func gathered(tb testing.TB, reg *prometheus.Registry) map[string]float64 {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gathering metrics: %v", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + `="` + l.GetValue() + `"}`
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[strings.Replace(key, f.GetName(), f.GetName()+"_count", 1)] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// A handler must consume nothing more than MaxBodyBytes+1 of a huge body.
func TestHandlerStopsReadingOversizeBody(t *testing.T) {
	t.Parallel()
	src := &countingReader{left: 4 * MaxBodyBytes}
	r := httptest.NewRequest(http.MethodPost, "/webhook", src)
	r.ContentLength = -1
	r.Header.Set("X-GitHub-Event", "pull_request")
	r.Header.Set("X-Hub-Signature-256", signature("guessed", nil))
	w := httptest.NewRecorder()
	newTestHandler(t, &recorder{}).ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", w.Code)
	}
	if src.read > MaxBodyBytes+64<<10 {
		t.Errorf("read %d bytes of an oversize body, limit %d", src.read, MaxBodyBytes)
	}
}

// countingReader yields left spaces and counts what was read.
type countingReader struct{ left, read int }

var spaces = bytes.Repeat([]byte(" "), 64<<10)

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.left)], spaces)
	c.left -= n
	c.read += n
	return n, nil
}

// announcer records head announcements.
type announcer struct {
	mu  sync.Mutex
	got []events.HeadAnnouncement
}

func (a *announcer) AnnounceHead(h events.HeadAnnouncement) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, h)
	return nil
}

func TestHandlerAnnouncesClosedPullRequests(t *testing.T) {
	t.Parallel()
	pub, heads := &recorder{}, &announcer{}
	h := newTestHandler(t, pub, WithHeadAnnouncer(heads))
	for _, fixtureName := range []string{"closed.json", "synchronize.json"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, signed("pull_request", fixture(t, fixtureName)).build())
		if w.Code != http.StatusAccepted {
			t.Fatalf("%s: answered %d", fixtureName, w.Code)
		}
	}
	if len(heads.got) != 1 || !heads.got[0].Closed || heads.got[0].Number < 1 || heads.got[0].Repo.Owner == "" {
		t.Errorf("announcements %+v, want one closing the pull request", heads.got)
	}
	if len(pub.events()) != 1 {
		t.Errorf("published %d events, want only the synchronize", len(pub.events()))
	}
	t.Run("unsigned_close_announces_nothing", func(t *testing.T) {
		rq := signed("pull_request", fixture(t, "closed.json"))
		rq.signature = signature("wrong secret", rq.body)
		h.ServeHTTP(httptest.NewRecorder(), rq.build())
		if len(heads.got) != 1 {
			t.Errorf("an unsigned delivery was announced: %+v", heads.got)
		}
	})
}

// headBook is a HeadRecorder that keeps what it was told, and whether the
// event was already published when it was told.
type headBook struct {
	mu   sync.Mutex
	pub  *recorder
	got  []events.HeadRecord
	late []bool
	fail error
	// block makes RecordHead wait for its context to end, like a bucket
	// whose leader is being elected.
	block bool
}

func (b *headBook) RecordHead(ctx context.Context, _ events.Repo, _ int, r events.HeadRecord) (events.HeadRecord, error) {
	if b.block {
		<-ctx.Done()
		return r, ctx.Err()
	}
	published := len(b.pub.events())
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, r)
	b.late = append(b.late, published > 0)
	return r, b.fail
}

func TestHandlerRecordsHeads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, fixture string
		fail          error
		wantClosed    bool
		wantPublished int
	}{
		{"synchronize_records_its_head_before_publishing", "synchronize.json", nil, false, 1},
		{"closed_records_the_close", "closed.json", nil, true, 0},
		{"a_failed_record_still_publishes", "synchronize.json", errors.New("bucket unavailable"), false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &recorder{}
			book := &headBook{pub: pub, fail: tt.fail}
			h := newTestHandler(t, pub, WithHeadRecorder(book))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, signed("pull_request", fixture(t, tt.fixture)).build())
			if w.Code != http.StatusAccepted {
				t.Fatalf("answered %d: %s", w.Code, w.Body)
			}
			_, at := deliveredPull(t, fixture(t, tt.fixture))
			if len(book.got) != 1 || book.got[0].Closed != tt.wantClosed || !book.got[0].UpdatedAt.Equal(at) || book.got[0].SHA == "" {
				t.Fatalf("recorded %+v; want one head, closed=%v, at the delivery's updated_at %v", book.got, tt.wantClosed, at)
			}
			if book.late[0] {
				t.Error("the head was recorded after the event was published: a fast worker would not find it")
			}
			if n := len(pub.events()); n != tt.wantPublished {
				t.Errorf("published %d events, want %d", n, tt.wantPublished)
			}
		})
	}
	// The head record is a hint; the publish is what the answer promises.
	// A bucket that cannot take the record (its leader being elected on a
	// cluster) used to hold the handler until the publish timeout had run
	// out, and the event was refused with 503.
	t.Run("a_record_that_hangs_leaves_the_publish_its_time", func(t *testing.T) {
		t.Parallel()
		pub := &recorder{}
		book := &headBook{pub: pub, block: true}
		h := newTestHandler(t, pub, WithHeadRecorder(book), WithPublishTimeout(200*time.Millisecond))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, signed("pull_request", fixture(t, "synchronize.json")).build())
		if w.Code != http.StatusAccepted || len(pub.events()) != 1 {
			t.Errorf("answered %d (%s) with %d events published; want 202 and the event", w.Code, w.Body, len(pub.events()))
		}
	})
	t.Run("ignored_and_unsigned_deliveries_record_nothing", func(t *testing.T) {
		t.Parallel()
		pub := &recorder{}
		book := &headBook{pub: pub}
		h := newTestHandler(t, pub, WithHeadRecorder(book))
		h.ServeHTTP(httptest.NewRecorder(), signed("pull_request", fixture(t, "edited_title.json")).build())
		rq := signed("pull_request", fixture(t, "synchronize.json"))
		rq.signature = signature("wrong secret", rq.body)
		h.ServeHTTP(httptest.NewRecorder(), rq.build())
		if len(book.got) != 0 {
			t.Errorf("recorded %+v", book.got)
		}
	})
}
