// Package pause waits for a time or for a context to end, whichever comes
// first: the one helper for every back-off, poll interval and retry wait in
// YourCI, so none of them can outlive the work it paces. It imports only
// the standard library and is safe for concurrent use.
package pause

import (
	"context"
	"time"
)

// For waits d, or until ctx ends if that comes first. It returns nil when
// the whole of d passed with ctx still live, and ctx.Err() otherwise (ask
// context.Cause for the reason). A d of zero or less does not wait, but an
// ended ctx still wins: a loop that pauses between tries stops at once.
func For(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Until waits until the wall clock reaches t, as For does for the time
// left; a t already past returns at once.
func Until(ctx context.Context, t time.Time) error {
	return For(ctx, time.Until(t))
}

// Poll asks done at once and then every interval until it returns true,
// and returns nil then; or it returns ctx.Err() once ctx ends first. It is
// for waiting on a condition nothing announces (a file appearing, a page
// changing, a process leaving): give ctx the deadline past which waiting
// is a failure. done runs on the caller's goroutine, one call at a time.
func Poll(ctx context.Context, every time.Duration, done func() bool) error {
	for {
		if done() {
			return nil
		}
		if err := For(ctx, every); err != nil {
			return err
		}
	}
}
