package events

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/pause"
)

// On a NATS cluster, a stream, bucket or consumer whose leader dies has
// none until the survivors elect one: Debian's nats-server 2.9 lets a
// follower wait 4 to 9 s without a heartbeat before it stands. Meanwhile
// a publish finds nobody listening on the stream's subjects, and API
// calls are answered "temporarily unavailable". Calls that fail so are
// repeated, with a short backoff, until the caller's deadline (or
// Options.ElectionWait) ends; everything else fails at once.

// Backoff between retries of a call that failed for want of a leader.
const (
	retryFirstWait = 50 * time.Millisecond
	// A short cap: once a leader is elected, the next try should come
	// soon, and a leaderless group answers a try at once.
	retryMaxWait = 250 * time.Millisecond
	// retryAttemptTimeout bounds one try of a retried call, so that a
	// request sent to a server that died before answering is sent again
	// within the caller's deadline instead of using all of it up.
	retryAttemptTimeout = 2 * time.Second
)

// JetStream error codes (nats-server's jetstream_errors.json) a retry can
// help: the cluster or the object's group has no leader right now.
const (
	codeClusterNotAvailable jetstream.ErrorCode = 10008 // "JetStream system temporarily unavailable"
	codeClusterNotLeader    jetstream.ErrorCode = 10009 // "JetStream cluster can not handle request"
)

// retryClass says whether a failed JetStream call may be made again.
type retryClass int

const (
	// retryNever: another try gets the same answer (a refusal of the
	// request itself, a conflict, a closed connection, a cancelled
	// caller).
	retryNever retryClass = iota
	// retryUnsent: no server took the request (nobody listening on the
	// subject, the connection reconnecting, a leaderless group refusing
	// it), so it did nothing and any call may be repeated.
	retryUnsent
	// retryUnanswered: no answer in time. The request may have taken
	// effect, so only calls safe to repeat are: a publish with a message
	// id (the stream stores it once), a read.
	retryUnanswered
)

// classify sorts an error from one JetStream call, made under a context
// of its own, into a retryClass.
func classify(err error) retryClass {
	var apiErr *jetstream.APIError
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return retryNever
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrDisconnected):
		return retryUnsent
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return retryUnanswered
	case errors.As(err, &apiErr):
		if apiErr.ErrorCode == codeClusterNotAvailable || apiErr.ErrorCode == codeClusterNotLeader {
			return retryUnsent
		}
	}
	return retryNever
}

// retryWait is the pause before try attempt+1: doubling from
// retryFirstWait up to retryMaxWait.
func retryWait(attempt int) time.Duration {
	d := retryFirstWait
	for i := 1; i < attempt && d < retryMaxWait; i++ {
		d *= 2
	}
	return min(d, retryMaxWait)
}

// retry runs op, each try bounded by retryAttemptTimeout, until it
// succeeds, fails in a way classify says a retry cannot help (an
// unanswered call counts only when idempotent), or ctx, bounded by
// Options.ElectionWait, leaves no time for another try. It returns op's
// last error.
func (s *store) retry(ctx context.Context, idempotent bool, op func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ElectionWait)
	defer cancel()
	for attempt := 1; ; attempt++ {
		tryCtx, cancelTry := context.WithTimeout(ctx, retryAttemptTimeout)
		err := op(tryCtx)
		cancelTry()
		switch c := classify(err); {
		case c == retryNever, c == retryUnanswered && !idempotent:
			return err
		}
		wait := retryWait(attempt)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			return err
		}
		s.log.Debug("JetStream call failed for want of a leader; trying again", "attempt", attempt, "wait", wait, "err", err)
		if pause.For(ctx, wait) != nil {
			return err
		}
	}
}
