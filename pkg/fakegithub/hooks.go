package fakegithub

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// GitHub's webhook limits: it waits 10 s for an answer and keeps at most
// this much of it.
const (
	deliveryTimeout  = 10 * time.Second
	maxDeliveryReply = 1 << 20
	// standaloneHookID is X-GitHub-Hook-ID on deliveries made with the
	// package-level Deliver, which belong to no registered hook.
	standaloneHookID = 1
	hookshotAgent    = "GitHub-Hookshot/f8a6d3c"
)

// hook is a webhook registered with AddHook.
type hook struct {
	id      int64
	url     string
	secret  string
	created time.Time
}

// Delivery records one webhook the server sent to a registered hook.
type Delivery struct {
	ID         string // X-GitHub-Delivery; kept on redelivery
	HookID     int64
	URL        string
	Event      string // X-GitHub-Event
	Action     string // the payload's action, "" for ping
	Redelivery bool
	Payload    []byte
	StatusCode int   // the receiver's answer; 0 when there was none
	Err        error // why there was no answer, or nil
	At         time.Time
	// Took is how long the receiver took to answer (or to fail).
	Took time.Duration
}

// AddHook registers a webhook: from now on OpenPull, PushPull (and Commit
// to a pull's head branch), ForcePushPull, ClosePull, ReopenPull, AddLabel
// and RemoveLabel deliver pull_request events (opened, synchronize, closed,
// reopened, labeled, unlabeled) to url, signed with secret, before they
// return. Like GitHub, AddHook first sends a ping, and a delivery that fails
// is recorded (see Deliveries) and never retried by itself (see Redeliver).
func (s *Server) AddHook(url, secret string) int64 {
	s.mu.Lock()
	h := &hook{id: s.newIDLocked(), url: url, secret: secret, created: time.Now().UTC().Truncate(time.Second)}
	s.hooks = append(s.hooks, h)
	payload, err := s.pingLocked(h)
	s.mu.Unlock()
	if err != nil {
		s.record(Delivery{ID: newDeliveryID(), HookID: h.id, URL: url, Event: "ping", Err: err, At: time.Now()})
		return h.id
	}
	if _, err := s.deliverTo(context.Background(), h, "ping", "", newDeliveryID(), payload, false); err != nil {
		s.logger().Warn("webhook ping failed", "url", url, "err", err)
	}
	return h.id
}

// Deliveries returns every delivery to registered hooks, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

// Redeliver sends a recorded delivery again with the same X-GitHub-Delivery
// id, as GitHub's "Redeliver" button does, and records the attempt.
func (s *Server) Redeliver(ctx context.Context, deliveryID string) (*http.Response, error) {
	s.mu.Lock()
	var found Delivery
	for _, d := range s.deliveries {
		if d.ID == deliveryID {
			found = d
			break
		}
	}
	var h *hook
	for _, candidate := range s.hooks {
		if found.ID != "" && candidate.id == found.HookID {
			h = candidate
		}
	}
	s.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("redelivering %s: no such delivery", deliveryID)
	}
	return s.deliverTo(ctx, h, found.Event, found.Action, found.ID, found.Payload, true)
}

// notify delivers a pull_request event to every registered hook.
func (s *Server) notify(action string, payload []byte) {
	s.mu.Lock()
	hooks := append([]*hook(nil), s.hooks...)
	s.mu.Unlock()
	for _, h := range hooks {
		if _, err := s.deliverTo(context.Background(), h, "pull_request", action, newDeliveryID(), payload, false); err != nil {
			s.logger().Warn("webhook delivery failed", "url", h.url, "err", err)
		}
	}
}

// deliverTo sends one delivery to h, waiting at most GitHub's 10 s, and
// records it.
func (s *Server) deliverTo(ctx context.Context, h *hook, event, action, id string, payload []byte, redelivery bool) (*http.Response, error) {
	d := Delivery{ID: id, HookID: h.id, URL: h.url, Event: event, Action: action, Redelivery: redelivery, Payload: payload, At: time.Now()}
	resp, err := send(ctx, h.url, h.secret, event, id, h.id, payload)
	d.Took = time.Since(d.At)
	d.Err = err
	if resp != nil {
		d.StatusCode = resp.StatusCode
	}
	s.record(d)
	return resp, err
}

func (s *Server) record(d Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries = append(s.deliveries, d)
}

// Deliver POSTs payload to url as GitHub delivers a webhook of type event:
// JSON body, a fresh X-GitHub-Delivery id (returned), X-GitHub-Event,
// X-GitHub-Hook-ID, a GitHub-Hookshot User-Agent and, when secret is not
// empty, X-Hub-Signature (HMAC-SHA1) and X-Hub-Signature-256 (HMAC-SHA256).
// It waits at most 10 s, as GitHub does, unless ctx ends sooner. The
// answer's body has already been read (up to 1 MiB) and closed; reading
// resp.Body returns it, and closing it is optional.
func Deliver(ctx context.Context, url, secret, event string, payload []byte) (*http.Response, string, error) {
	id := newDeliveryID()
	resp, err := DeliverWithID(ctx, url, secret, event, id, payload)
	return resp, id, err
}

// DeliverWithID is Deliver with a chosen X-GitHub-Delivery id, as on a
// manual redelivery.
func DeliverWithID(ctx context.Context, url, secret, event, deliveryID string, payload []byte) (*http.Response, error) {
	return send(ctx, url, secret, event, deliveryID, standaloneHookID, payload)
}

// hookClient does not follow redirects: GitHub records them as failures.
var hookClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func send(ctx context.Context, url, secret, event, id string, hookID int64, payload []byte) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("delivering %s %s: %w", event, id, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", hookshotAgent)
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-GitHub-Hook-ID", strconv.FormatInt(hookID, 10))
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	req.Header.Set("X-GitHub-Hook-Installation-Target-ID", strconv.FormatInt(hookID, 10))
	if secret != "" {
		req.Header.Set("X-Hub-Signature", SignatureSHA1(secret, payload))
		req.Header.Set("X-Hub-Signature-256", Signature256(secret, payload))
	}
	resp, err := hookClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("delivering %s %s: %w", event, id, err)
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxDeliveryReply))
	cerr := resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := errors.Join(rerr, cerr); err != nil {
		return resp, fmt.Errorf("reading answer to %s %s: %w", event, id, err)
	}
	return resp, nil
}

// Signature256 is the X-Hub-Signature-256 header GitHub sends:
// "sha256=" and the hex HMAC-SHA256 of payload keyed with secret.
func Signature256(secret string, payload []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(payload)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// SignatureSHA1 is the legacy X-Hub-Signature header: "sha1=" and the hex
// HMAC-SHA1 of payload.
func SignatureSHA1(secret string, payload []byte) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(payload)
	return "sha1=" + hex.EncodeToString(m.Sum(nil))
}

// newDeliveryID returns a random UUID (version 4), the form of GitHub's
// X-GitHub-Delivery.
func newDeliveryID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
