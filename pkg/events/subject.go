package events

import (
	"errors"
	"fmt"
	"strings"
)

// Subjects of the stream. Each message's subject ends with the encoded owner
// and repository, so operators can see and purge one repository's work.
const (
	// PullSubjects matches every PullEvent (consumer handle_pull).
	PullSubjects = "yci.pull.>"
	// TestSubjects matches every TestJob (consumer handle_test).
	TestSubjects = "yci.test.>"

	pullPrefix = "yci.pull."
	testPrefix = "yci.test."
)

// PullSubject is the subject a PullEvent for r is published on:
// yci.pull.<owner>.<repo>, each token encoded with EncodeToken.
func PullSubject(r Repo) string { return pullPrefix + repoTokens(r) }

// TestSubject is the subject a TestJob for r is published on:
// yci.test.<owner>.<repo>, each token encoded with EncodeToken.
func TestSubject(r Repo) string { return testPrefix + repoTokens(r) }

func repoTokens(r Repo) string { return EncodeToken(r.Owner) + "." + EncodeToken(r.Name) }

// escape starts an escaped byte (=XX, upper-case hex). Alone, it stands for
// the empty string, which is not a valid NATS token.
const escape = '='

const upperHex = "0123456789ABCDEF"

// safe reports whether c may appear unescaped in an encoded token. The set
// is the intersection of what NATS subjects, JetStream key-value keys and
// message ids accept without special meaning.
func safe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// EncodeToken turns any string into a non-empty token made only of
// [A-Za-z0-9_=-], usable as one NATS subject token or one part of a
// key-value key. Bytes outside [A-Za-z0-9_-] become =XX (upper-case hex),
// and the empty string becomes "=". The mapping is one-to-one: DecodeToken
// reverses it, and distinct inputs never share an encoding.
func EncodeToken(s string) string {
	if s == "" {
		return string(escape)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !safe(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte(escape)
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0xF])
	}
	return b.String()
}

// ErrBadToken is returned by DecodeToken for a string EncodeToken cannot
// have produced.
var ErrBadToken = errors.New("not an encoded token")

// DecodeToken reverses EncodeToken. It accepts only EncodeToken's own
// output (no lower-case hex, no escaped safe bytes), so that
// EncodeToken(DecodeToken(t)) == t for every t it accepts.
func DecodeToken(t string) (string, error) {
	switch t {
	case "":
		return "", fmt.Errorf("decoding empty token: %w", ErrBadToken)
	case string(escape):
		return "", nil
	}
	if !strings.ContainsRune(t, escape) {
		for i := 0; i < len(t); i++ {
			if !safe(t[i]) {
				return "", fmt.Errorf("decoding %q: byte %d: %w", t, i, ErrBadToken)
			}
		}
		return t, nil
	}
	out := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case safe(c):
			out = append(out, c)
		case c == escape && i+2 < len(t):
			hi, lo := unhex(t[i+1]), unhex(t[i+2])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("decoding %q: escape at byte %d: %w", t, i, ErrBadToken)
			}
			d := byte(hi<<4 | lo)
			if safe(d) {
				return "", fmt.Errorf("decoding %q: needless escape at byte %d: %w", t, i, ErrBadToken)
			}
			out = append(out, d)
			i += 2
		default:
			return "", fmt.Errorf("decoding %q: byte %d: %w", t, i, ErrBadToken)
		}
	}
	return string(out), nil
}

// unhex returns the value of an upper-case hex digit, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
