package webhook

import (
	"errors"
	"fmt"
	"sync"
)

// DefaultMaxInflightBytes is the default of the receiver's
// -max-inflight-bytes: enough for two of GitHub's largest deliveries, small
// enough that a flood of bodies cannot take the receiver's memory.
const DefaultMaxInflightBytes = 64 << 20

// SmallBodyBytes is the declared length up to which a delivery may also use
// the budget's reserve. GitHub's pull_request and ping deliveries are tens
// of kilobytes; a flood of bodies declared larger than this cannot touch
// the reserve, so it cannot starve them.
const SmallBodyBytes = 1 << 20

// reserveShare is the part of a budget (1/reserveShare) kept for small
// deliveries. The rest is left for the largest delivery GitHub sends, read
// and then copied once by the webhook library.
const reserveShare = 8

// Budget caps the bytes of delivery bodies held in memory across every
// request of a handler. Bytes are counted as they arrive, never from a
// declared Content-Length, so a client that trickles its body holds only
// what it sent. A delivery that cannot get the bytes it needs is answered
// 503 with Retry-After, and its bytes are given back. A Budget is safe for
// concurrent use.
type Budget struct {
	mu               sync.Mutex
	general, reserve int64 // capacities
	usedGeneral      int64
	usedReserve      int64
}

// NewBudget returns a budget of max bytes, an eighth of which is kept for
// deliveries declared no longer than SmallBodyBytes. It refuses a max under
// 8 MiB, which could not hold one small delivery in its reserve.
func NewBudget(max int64) (*Budget, error) {
	if max < reserveShare*SmallBodyBytes {
		return nil, fmt.Errorf("in-flight body budget %d bytes is under the minimum of %d", max, reserveShare*SmallBodyBytes)
	}
	reserve := max / reserveShare
	return &Budget{general: max - reserve, reserve: reserve}, nil
}

// InFlight is how many body bytes requests hold now.
func (b *Budget) InFlight() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.usedGeneral + b.usedReserve
}

// errBusy is returned when a delivery cannot get the memory its body needs.
var errBusy = errors.New("too many deliveries in flight; try again shortly")

// grant is what one request holds of a Budget. Not safe for concurrent
// use: one request, one goroutine.
type grant struct {
	b                *Budget
	small            bool
	general, reserve int64
}

// open starts a request's grant; small says its declared length is at most
// SmallBodyBytes, which lets it draw on the reserve.
func (b *Budget) open(small bool) *grant { return &grant{b: b, small: small} }

// take adds n bytes to the grant, from the general part first, or fails
// with errBusy, taking nothing.
func (g *grant) take(n int64) error {
	b := g.b
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.usedGeneral+n <= b.general:
		b.usedGeneral += n
		g.general += n
	case g.small && b.usedReserve+n <= b.reserve:
		b.usedReserve += n
		g.reserve += n
	default:
		return errBusy
	}
	return nil
}

// give gives back n of the bytes the grant holds (the reserve's first).
func (g *grant) give(n int64) {
	b := g.b
	b.mu.Lock()
	defer b.mu.Unlock()
	fromReserve := min(n, g.reserve)
	g.reserve -= fromReserve
	b.usedReserve -= fromReserve
	fromGeneral := min(n-fromReserve, g.general)
	g.general -= fromGeneral
	b.usedGeneral -= fromGeneral
}

// release gives back everything the grant holds. It may be called again.
func (g *grant) release() {
	b := g.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.usedGeneral -= g.general
	b.usedReserve -= g.reserve
	g.general, g.reserve = 0, 0
}
