package events

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Only failures that another try can cure are retried; everything else
// must reach the caller at once, or a refused request would hold a
// webhook for seconds and a conflict would be written twice.
func TestClassify(t *testing.T) {
	t.Parallel()
	apiErr := func(code jetstream.ErrorCode, http int) error {
		return fmt.Errorf("nats: %w", &jetstream.APIError{Code: http, ErrorCode: code, Description: "x"})
	}
	cases := []struct {
		name string
		err  error
		want retryClass
	}{
		{"success", nil, retryNever},
		{"no responders (stream leaderless)", nats.ErrNoResponders, retryUnsent},
		{"no stream response (jetstream's no responders)", fmt.Errorf("publishing x: %w", jetstream.ErrNoStreamResponse), retryUnsent},
		{"connection reconnecting", nats.ErrConnectionReconnecting, retryUnsent},
		{"reconnect buffer off while reconnecting", nats.ErrReconnectBufExceeded, retryUnsent},
		{"disconnected", nats.ErrDisconnected, retryUnsent},
		{"cluster temporarily unavailable", apiErr(codeClusterNotAvailable, 503), retryUnsent},
		{"cluster cannot handle request (not leader)", apiErr(codeClusterNotLeader, 500), retryUnsent},
		{"nats timeout", nats.ErrTimeout, retryUnanswered},
		{"try's deadline passed", fmt.Errorf("publishing x: %w", context.DeadlineExceeded), retryUnanswered},
		{"caller cancelled", context.Canceled, retryNever},
		{"connection closed", nats.ErrConnectionClosed, retryNever},
		{"connection draining", nats.ErrConnectionDraining, retryNever},
		{"key exists (compare-and-set lost)", jetstream.ErrKeyExists, retryNever},
		{"wrong last sequence", apiErr(jetstream.JSErrCodeStreamWrongLastSequence, 400), retryNever},
		{"stream not found", jetstream.ErrStreamNotFound, retryNever},
		{"message too large", jetstream.ErrStreamMessageExceedsMaximum, retryNever},
		{"invalid ack", jetstream.ErrInvalidJSAck, retryNever},
		{"JetStream not enabled", jetstream.ErrJetStreamNotEnabled, retryNever},
		{"anything else", errors.New("boom"), retryNever},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := classify(c.err); got != c.want {
				t.Errorf("classify(%v) = %d, want %d", c.err, got, c.want)
			}
		})
	}
}

func TestRetryWaitDoublesToItsCap(t *testing.T) {
	t.Parallel()
	want := []time.Duration{50, 100, 200, 250, 250}
	for i, w := range want {
		if got := retryWait(i + 1); got != w*time.Millisecond {
			t.Errorf("retryWait(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
}

// retry stops at the first error a retry cannot help, repeats an
// unanswered call only when it is idempotent, and gives up, with the
// last error, when the deadline leaves no room for another try.
func TestRetry(t *testing.T) {
	t.Parallel()
	s := &store{opts: Options{}.withDefaults()}
	s.log = s.opts.Logger
	cases := []struct {
		name       string
		idempotent bool
		errs       []error // returned by successive tries; nil after the end
		wantTries  int
		wantErr    error
	}{
		{"succeeds after the leader is elected", false, []error{nats.ErrNoResponders, apiErrNotAvail, nil}, 3, nil},
		{"refusal is not retried", true, []error{jetstream.ErrStreamNotFound}, 1, jetstream.ErrStreamNotFound},
		{"unanswered idempotent call is retried", true, []error{nats.ErrTimeout, nil}, 2, nil},
		{"unanswered write is not retried", false, []error{nats.ErrTimeout, nil}, 1, nats.ErrTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tries := 0
			err := s.retry(t.Context(), c.idempotent, func(context.Context) error {
				tries++
				if tries <= len(c.errs) {
					return c.errs[tries-1]
				}
				return nil
			})
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
				t.Errorf("retry = %v, want %v", err, c.wantErr)
			}
			if tries != c.wantTries {
				t.Errorf("%d tries, want %d", tries, c.wantTries)
			}
		})
	}
	// Options.Timeout bounds a call a server answers; a cluster electing a
	// leader is waited for longer, up to ElectionWait (issue 17: a claim
	// gave up after 10 s while a loaded cluster elected).
	t.Run("election_outlasts_the_call_timeout", func(t *testing.T) {
		t.Parallel()
		s := &store{opts: Options{Timeout: time.Millisecond, ElectionWait: time.Minute}.withDefaults()}
		s.log = s.opts.Logger
		const leaderless = 4 // 50+100+200+250 ms of waits, far past Timeout
		tries := 0
		err := s.retry(t.Context(), false, func(context.Context) error {
			tries++
			if tries <= leaderless {
				return apiErrNotAvail
			}
			return nil
		})
		if err != nil || tries != leaderless+1 {
			t.Errorf("retry = %v after %d tries; want success on try %d", err, tries, leaderless+1)
		}
	})
	t.Run("deadline_bounds_the_tries", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		tries := 0
		err := s.retry(ctx, true, func(context.Context) error {
			tries++
			return nats.ErrNoResponders
		})
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("retry = %v, want the last try's error", err)
		}
		if ctx.Err() != nil {
			t.Errorf("retry returned after its deadline (%d tries); it must give up while there is still time to answer", tries)
		}
		if tries < 2 {
			t.Errorf("%d tries within 300ms, want several", tries)
		}
	})
}

var apiErrNotAvail = &jetstream.APIError{Code: 503, ErrorCode: codeClusterNotAvailable, Description: "JetStream system temporarily unavailable"}
