package pipeline

import (
	"bytes"
	"errors"
	"io"
	"slices"
)

// MinSecretLen is the shortest secret a MaskingWriter masks. Shorter values
// would garble ordinary output and hide little worth hiding.
const MinSecretLen = 4

// Mask is what a MaskingWriter writes in place of a secret.
const Mask = "***"

// errMaskingClosed is returned by Write after Close.
var errMaskingClosed = errors.New("masking writer is closed")

// MaskingWriter replaces every occurrence of a secret in the bytes written
// through it with Mask before they reach the underlying writer, including a
// secret split across several Write calls: it holds back only the end of
// its input that could still become a secret (at most the longest secret's
// length minus one byte) until a later Write or Flush settles it, so output
// that cannot be a secret reaches the writer at once.
//
// Where secrets overlap, the leftmost occurrence is masked, the longest one
// at a given position. After an error from the underlying writer every
// later call returns that error. A MaskingWriter is not safe for concurrent
// use.
type MaskingWriter struct {
	w       io.Writer
	secrets [][]byte // longest first, so the longest match at a position wins
	maxLen  int
	next    []int // per secret: its next match in the buffer being masked
	held    []byte
	scratch []byte
	out     []byte
	err     error
}

// NewMaskingWriter returns a writer that masks secrets on their way to w.
// Secrets shorter than MinSecretLen and duplicates are ignored; with none
// left, writes pass straight through.
func NewMaskingWriter(w io.Writer, secrets []string) *MaskingWriter {
	m := &MaskingWriter{w: w}
	for _, s := range secrets {
		if len(s) < MinSecretLen || slices.ContainsFunc(m.secrets, func(b []byte) bool { return string(b) == s }) {
			continue
		}
		m.secrets = append(m.secrets, []byte(s))
		m.maxLen = max(m.maxLen, len(s))
	}
	slices.SortStableFunc(m.secrets, func(a, b []byte) int { return len(b) - len(a) })
	m.next = make([]int, len(m.secrets))
	return m
}

// Write masks p and writes what is settled to the underlying writer. It
// reports len(p) when all of p was accepted, held-back bytes included.
func (m *MaskingWriter) Write(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if len(m.secrets) == 0 {
		n, err := m.w.Write(p)
		m.err = err
		return n, err
	}
	buf := p
	if len(m.held) > 0 {
		m.scratch = append(append(m.scratch[:0], m.held...), p...)
		buf = m.scratch
	}
	rest := m.mask(buf, false)
	m.held = append(m.held[:0], rest...)
	if err := m.emit(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes the held-back bytes, masked where they hold a whole secret.
// Call it when the stream ends; a secret split across a Flush is not masked.
func (m *MaskingWriter) Flush() error {
	if m.err != nil {
		return m.err
	}
	if len(m.held) == 0 {
		return nil
	}
	m.mask(m.held, true)
	m.held = m.held[:0]
	return m.emit()
}

// Close flushes the writer and refuses later writes. It does not close the
// underlying writer, which stays the caller's.
func (m *MaskingWriter) Close() error {
	err := m.Flush()
	if m.err == nil {
		m.err = errMaskingClosed
	}
	return err
}

func (m *MaskingWriter) emit() error {
	if len(m.out) == 0 {
		return nil
	}
	if _, err := m.w.Write(m.out); err != nil {
		m.err = err
		return err
	}
	return nil
}

// mask puts into m.out the settled part of buf with secrets replaced and
// returns the unsettled end of buf: empty when final, else the longest end
// that is a proper prefix of a secret.
func (m *MaskingWriter) mask(buf []byte, final bool) []byte {
	m.out = m.out[:0]
	for k := range m.next {
		m.next[k] = -1
	}
	hold := len(buf)
	if !final {
		hold = m.holdFrom(buf, 0)
	}
	i := 0
	for i < hold {
		p, n := m.earliest(buf, i)
		if p >= hold {
			break
		}
		m.out = append(m.out, buf[i:p]...)
		m.out = append(m.out, Mask...)
		i = p + n
		if !final && i > hold {
			hold = m.holdFrom(buf, i)
		}
	}
	if i < hold {
		m.out = append(m.out, buf[i:hold]...)
		i = hold
	}
	return buf[i:]
}

// earliest returns the position and length of the first whole secret in
// buf at or after i, or len(buf) when there is none.
func (m *MaskingWriter) earliest(buf []byte, i int) (pos, n int) {
	pos = len(buf)
	for k, s := range m.secrets {
		if m.next[k] < i {
			m.next[k] = len(buf)
			if j := bytes.Index(buf[i:], s); j >= 0 {
				m.next[k] = i + j
			}
		}
		if m.next[k] < pos {
			pos, n = m.next[k], len(s)
		}
	}
	return pos, n
}

// holdFrom returns the first position at or after from where the rest of
// buf is a proper prefix of some secret, or len(buf).
func (m *MaskingWriter) holdFrom(buf []byte, from int) int {
	for h := max(from, len(buf)-m.maxLen+1); h < len(buf); h++ {
		tail := buf[h:]
		for _, s := range m.secrets {
			if len(tail) < len(s) && bytes.HasPrefix(s, tail) {
				return h
			}
		}
	}
	return len(buf)
}
