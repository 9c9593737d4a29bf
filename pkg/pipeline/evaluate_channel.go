package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// An evaluation's result and stacks are hostile input: python runs the
// repository's code, which may write anything, forever, to every
// descriptor it holds. They reach the worker only over pipes the worker
// made before python started (never a path python could replace with a
// symlink, a FIFO or /dev/zero), read while python runs, each into a
// bounded buffer, and the reads end at a deadline once python is gone.

const (
	// resultFD and stacksFD are the descriptors python inherits, in
	// cmd.ExtraFiles order (3 is the first); a Sandbox appends its own
	// after them.
	resultFD = 3
	stacksFD = 4
	// maxStacks bounds what is kept of the stacks python dumps on a
	// timeout: enough for every thread of a sane .yci.py.
	maxStacks = 256 << 10
)

// bounded keeps the first max bytes written to it and counts, then drops,
// the rest, so that a writer never blocks on it and its memory is bounded
// whatever the amount written. It is safe for concurrent use.
type bounded struct {
	max int
	// all means only all of it is of use: once more than max bytes came,
	// what was kept is dropped too.
	all bool
	mu  sync.Mutex
	// chunks hold what was kept, boundedChunk bytes each but the last:
	// growing one slice would leave a garbage copy at each doubling.
	chunks  [][]byte
	kept    int
	written int64
}

const boundedChunk = 64 << 10

func (b *bounded) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.written += int64(len(p))
	if b.written > int64(b.max) && b.all {
		b.chunks, b.kept = nil, 0
		return len(p), nil
	}
	for rest := p[:min(b.max-b.kept, len(p))]; len(rest) > 0; {
		n := len(b.chunks)
		if n == 0 || len(b.chunks[n-1]) == cap(b.chunks[n-1]) {
			b.chunks = append(b.chunks, make([]byte, 0, min(boundedChunk, b.max-b.kept)))
			n++
		}
		last := b.chunks[n-1]
		k := min(cap(last)-len(last), len(rest))
		b.chunks[n-1] = append(last, rest[:k]...)
		b.kept += k
		rest = rest[k:]
	}
	return len(p), nil
}

// snapshot returns what was kept and whether more was written.
func (b *bounded) snapshot() (data []byte, over bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data = make([]byte, 0, b.kept)
	for _, c := range b.chunks {
		data = append(data, c...)
	}
	return data, b.written > int64(b.max)
}

// size is how many bytes were written so far, kept or not.
func (b *bounded) size() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.written
}

// channel is the worker's end of one pipe from the evaluation, drained
// into w by a goroutine from start until EOF or its deadline.
type channel struct {
	name   string
	r      *os.File
	w      io.Writer
	copied chan error
}

// openChannels makes one pipe per writer. The returned write ends are for
// cmd.ExtraFiles, in order; the caller closes them once python started (or
// failed to). close releases the read ends.
func openChannels(names []string, ws []io.Writer) (chans []*channel, ends []*os.File, err error) {
	for i, name := range names {
		r, w, err := os.Pipe()
		if err != nil {
			closeChannels(chans, ends)
			return nil, nil, fmt.Errorf("creating the %s pipe for %s: %w", name, ConfigFile, err)
		}
		chans = append(chans, &channel{name: name, r: r, w: ws[i], copied: make(chan error, 1)})
		ends = append(ends, w)
	}
	return chans, ends, nil
}

func closeChannels(chans []*channel, ends []*os.File) {
	for _, c := range chans {
		c.r.Close()
	}
	for _, w := range ends {
		w.Close()
	}
}

// start drains the pipe in the background.
func (c *channel) start() {
	go func() {
		_, err := io.Copy(c.w, c.r)
		c.copied <- err
	}()
}

// finish waits for the drain to end, at the latest at deadline; cut
// reports that a process still held the pipe open then. It must be called
// once, after start.
func (c *channel) finish(deadline time.Time) (cut bool, err error) {
	if err := c.r.SetReadDeadline(deadline); err != nil {
		return false, fmt.Errorf("reading the %s of %s: %w", c.name, ConfigFile, err)
	}
	err = <-c.copied
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the %s of %s: %w", c.name, ConfigFile, err)
	}
	return false, nil
}
