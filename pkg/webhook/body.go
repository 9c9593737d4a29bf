package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strings"
)

// chunkSize is the unit in which a body is read and held: a typical
// pull_request delivery fits in one chunk, so it is never copied.
const chunkSize = 64 << 10

// errSlowBody is returned when the client did not send its body within the
// server's read deadline.
var errSlowBody = errors.New("body not received in time")

// signatureOf parses X-Hub-Signature-256: "sha256=" and 64 hex digits. A
// delivery without a well-formed one is refused before its body is read.
func signatureOf(r *http.Request) ([]byte, error) {
	v, ok := strings.CutPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
	if !ok {
		return nil, fmt.Errorf("%w: X-Hub-Signature-256 missing or not sha256=", errUnauthorized)
	}
	sig, err := hex.DecodeString(v)
	if err != nil || len(sig) != sha256.Size {
		return nil, fmt.Errorf("%w: X-Hub-Signature-256 is not a SHA-256 HMAC", errUnauthorized)
	}
	return sig, nil
}

// bodyReader reads one delivery's body: it hashes every byte with the
// webhook secret as it arrives, and keeps the bytes (when asked) in
// chunks taken from the request's grant, so that memory follows what the
// client actually sent.
type bodyReader struct {
	mac    hash.Hash
	grant  *grant
	keep   bool
	chunks [][]byte
	n      int
}

func newBodyReader(secret []byte, g *grant, keep bool) *bodyReader {
	return &bodyReader{mac: hmac.New(sha256.New, secret), grant: g, keep: keep}
}

// readFrom reads body to its end. Errors: errTooLarge past MaxBodyBytes,
// errSlowBody when the read deadline passed, errBusy when the budget is
// spent, a *BadRequestError when the body could not be read.
func (b *bodyReader) readFrom(w http.ResponseWriter, body io.Reader) error {
	body = http.MaxBytesReader(w, io.NopCloser(body), MaxBodyBytes)
	var scratch []byte // the one buffer of a body that is not kept
	for {
		buf, err := b.space(&scratch)
		if err != nil {
			return err
		}
		n, err := body.Read(buf)
		b.mac.Write(buf[:n])
		b.n += n
		if b.keep {
			last := len(b.chunks) - 1
			b.chunks[last] = b.chunks[last][:len(b.chunks[last])+n]
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return readError(err)
		}
	}
}

// space returns where the next bytes go: the free end of the last chunk, a
// new chunk taken from the grant, or, for a body not kept, the scratch
// buffer.
func (b *bodyReader) space(scratch *[]byte) ([]byte, error) {
	if !b.keep {
		if *scratch == nil {
			*scratch = make([]byte, 32<<10)
		}
		return *scratch, nil
	}
	if last := len(b.chunks) - 1; last >= 0 && len(b.chunks[last]) < cap(b.chunks[last]) {
		c := b.chunks[last]
		return c[len(c):cap(c)], nil
	}
	if err := b.grant.take(chunkSize); err != nil {
		return nil, err
	}
	b.chunks = append(b.chunks, make([]byte, 0, chunkSize))
	return b.chunks[len(b.chunks)-1][:chunkSize], nil
}

func readError(err error) error {
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Errorf("%w: over %d bytes", errTooLarge, MaxBodyBytes)
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%w: %w", errSlowBody, err)
	}
	return &BadRequestError{Field: "body", Problem: fmt.Sprintf("could not be read: %v", err)}
}

// verify reports whether the body hashes to sig.
func (b *bodyReader) verify(sig []byte) error {
	if !hmac.Equal(b.mac.Sum(nil), sig) {
		return fmt.Errorf("%w: %w", errUnauthorized, errHMAC)
	}
	return nil
}

var errHMAC = errors.New("HMAC of the body does not match X-Hub-Signature-256")

// bytes returns the kept body in one slice: the first chunk itself when it
// holds all of it, else one copy, taken from the grant, after which the
// chunks are let go.
func (b *bodyReader) bytes() ([]byte, error) {
	switch len(b.chunks) {
	case 0:
		return nil, nil
	case 1:
		return b.chunks[0], nil
	}
	if err := b.grant.take(int64(b.n)); err != nil {
		return nil, err
	}
	out := make([]byte, 0, b.n)
	for _, c := range b.chunks {
		out = append(out, c...)
	}
	b.grant.give(int64(len(b.chunks)) * chunkSize)
	b.chunks = nil
	return out, nil
}
