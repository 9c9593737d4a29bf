package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestBudget(t *testing.T) {
	t.Parallel()
	const max = 16 << 20 // 14 MiB general, 2 MiB reserve
	tests := []struct {
		name   string
		steps  func(b *Budget) error
		wantIn int64
	}{
		{"large_takes_the_general_part", func(b *Budget) error { return b.open(false).take(14 << 20) }, 14 << 20},
		{"large_cannot_take_the_reserve", func(b *Budget) error { return b.open(false).take(14<<20 + 1) }, 0},
		{"small_takes_the_reserve_when_the_rest_is_gone", func(b *Budget) error {
			if err := b.open(false).take(14 << 20); err != nil {
				return err
			}
			return b.open(true).take(1 << 20)
		}, 15 << 20},
		{"small_refused_when_both_are_gone", func(b *Budget) error {
			if err := b.open(false).take(14 << 20); err != nil {
				return err
			}
			if err := b.open(true).take(2 << 20); err != nil {
				return err
			}
			return b.open(true).take(1)
		}, 16 << 20},
		{"release_gives_everything_back", func(b *Budget) error {
			g := b.open(true)
			if err := g.take(14 << 20); err != nil {
				return err
			}
			if err := g.take(1 << 20); err != nil {
				return err
			}
			g.release()
			g.release()
			return nil
		}, 0},
		{"give_returns_the_reserve_first", func(b *Budget) error {
			g := b.open(true)
			if err := g.take(14 << 20); err != nil {
				return err
			}
			if err := g.take(1 << 20); err != nil {
				return err
			}
			g.give(1 << 20)
			if g.reserve != 0 || g.general != 14<<20 {
				return errors.New("give took from the wrong part")
			}
			return nil
		}, 14 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := NewBudget(max)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.steps(b)
			if strings.Contains(tt.name, "cannot") || strings.Contains(tt.name, "refused") {
				if !errors.Is(err, errBusy) {
					t.Errorf("got %v, want errBusy", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := b.InFlight(); got != tt.wantIn {
				t.Errorf("in flight %d, want %d", got, tt.wantIn)
			}
		})
	}
	if _, err := NewBudget(1 << 20); err == nil {
		t.Error("NewBudget(1 MiB) accepted a budget with no room for a small delivery")
	}
}

// stalled is a body that yields n bytes of spaces then blocks until
// released, like a client that stopped sending; it reports, once, when it
// has handed out its n bytes.
type stalled struct {
	n       int
	sent    chan struct{}
	release chan struct{}
}

func newStalled(n int) *stalled {
	return &stalled{n: n, sent: make(chan struct{}), release: make(chan struct{})}
}

func (s *stalled) Read(p []byte) (int, error) {
	if s.n == 0 {
		if s.sent != nil {
			close(s.sent)
			s.sent = nil
		}
		<-s.release
		return 0, os.ErrDeadlineExceeded
	}
	k := copy(p[:min(len(p), s.n)], spaces)
	s.n -= k
	return k, nil
}

// The budget at work: bodies declared large hold the general part, a
// further one is refused 503 with Retry-After, and a real delivery still
// gets through on the reserve; the stalled bodies end as 408.
func TestHandlerBudget(t *testing.T) {
	t.Parallel()
	budget, err := NewBudget(8 << 20) // 7 MiB general, 1 MiB reserve
	if err != nil {
		t.Fatal(err)
	}
	pub := &recorder{}
	h := newTestHandler(t, pub, WithBudget(budget))

	bigRequest := func(body io.Reader) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/webhook", body)
		r.ContentLength = MaxBodyBytes
		r.Header.Set("X-GitHub-Event", "pull_request")
		r.Header.Set("X-Hub-Signature-256", signature("guessed", nil))
		return r
	}
	var holders []*stalled
	answers := make(chan *httptest.ResponseRecorder, 8)
	for range 7 {
		// Having sent 15 chunks, each holds a 16th for the bytes to come:
		// 1 MiB.
		s := newStalled(1<<20 - chunkSize)
		holders = append(holders, s)
		go func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, bigRequest(s))
			answers <- w
		}()
		select {
		case <-s.sent:
		case w := <-answers:
			t.Fatalf("a stalled body was answered %d %s before it stalled", w.Code, w.Body)
		}
	}
	if got := budget.InFlight(); got != 7<<20 {
		t.Fatalf("in flight %d after 7 stalled MiB, want %d", got, 7<<20)
	}

	w := httptest.NewRecorder()
	h.ServeHTTP(w, bigRequest(bytes.NewReader(bytes.Repeat([]byte(" "), 1<<20))))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("a body past the budget: status %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}

	w = httptest.NewRecorder()
	h.ServeHTTP(w, signed("pull_request", fixture(t, "opened.json")).build())
	if w.Code != http.StatusAccepted || len(pub.events()) != 1 {
		t.Errorf("a real delivery while the budget is spent: status %d, %d published; want 202 and 1: %s", w.Code, len(pub.events()), w.Body)
	}

	for _, s := range holders {
		close(s.release)
	}
	for range holders {
		w := <-answers
		var a answer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || w.Code != http.StatusRequestTimeout {
			t.Errorf("stalled body answered %d %s, want 408", w.Code, w.Body)
		}
	}
	if got := budget.InFlight(); got != 0 {
		t.Errorf("in flight %d after every request ended, want 0", got)
	}
}

// A body of an event YourCI ignores is hashed as it streams and never
// held: the budget sees none of it.
func TestHandlerHoldsNoBodyOfIgnoredEvents(t *testing.T) {
	t.Parallel()
	budget, err := NewBudget(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte(" "), 20<<20)
	src := &watchingReader{r: bytes.NewReader(body), budget: budget}
	r := httptest.NewRequest(http.MethodPost, "/webhook", src)
	r.Header.Set("X-GitHub-Event", "push")
	r.Header.Set("X-GitHub-Delivery", testDelivery)
	r.Header.Set("X-Hub-Signature-256", signature(testSecret, body))
	w := httptest.NewRecorder()
	newTestHandler(t, &recorder{}, WithBudget(budget)).ServeHTTP(w, r)
	if w.Code != http.StatusAccepted || !strings.Contains(w.Body.String(), "ignored") {
		t.Errorf("20 MB push: %d %s, want 202 ignored", w.Code, w.Body)
	}
	if src.peak != 0 {
		t.Errorf("budget held %d bytes of an ignored event's body, want 0", src.peak)
	}
}

// watchingReader records the budget's peak while its body is read.
type watchingReader struct {
	r      io.Reader
	budget *Budget
	peak   int64
}

func (w *watchingReader) Read(p []byte) (int, error) {
	w.peak = max(w.peak, w.budget.InFlight())
	return w.r.Read(p)
}

// A large authentic delivery is read in chunks and copied into one slice
// once, with every byte still verified and decoded.
func TestHandlerJoinsChunksOfAnAuthenticBody(t *testing.T) {
	t.Parallel()
	opened := fixture(t, "opened.json")
	// Pad the JSON with whitespace past several chunks.
	padded := append(bytes.Repeat([]byte(" "), 3*chunkSize+17), opened...)
	budget, err := NewBudget(DefaultMaxInflightBytes)
	if err != nil {
		t.Fatal(err)
	}
	pub := &recorder{}
	w := httptest.NewRecorder()
	newTestHandler(t, pub, WithBudget(budget)).ServeHTTP(w, signed("pull_request", padded).build())
	if w.Code != http.StatusAccepted || len(pub.events()) != 1 {
		t.Errorf("padded delivery: %d %s, %d published; want 202 and 1", w.Code, w.Body, len(pub.events()))
	}
	if got := budget.InFlight(); got != 0 {
		t.Errorf("in flight %d after the delivery, want 0", got)
	}
}
