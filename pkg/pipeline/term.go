package pipeline

import (
	"io"
	"unicode/utf8"
)

// maxSGR is the longest colour sequence (ESC [ params m) kept as it is;
// a longer one is neutralised. It bounds what a TermWriter holds back.
const maxSGR = 64

// escPicture is what an ESC that would act becomes: U+241B, the symbol
// for escape, so a reader sees "␛]52;c;..." where a clipboard write was
// attempted, and the terminal sees no escape.
const escPicture = "\u241b"

// TermWriter neutralises terminal control sequences on their way to w, so
// that a log shown by `curl` or `less -R` cannot act on the reader's
// terminal, and keeps colours:
//   - SGR sequences (ESC [ digits ; : m) pass as they are;
//   - every other ESC (starting OSC, DCS, APC, PM, SOS, a CSI other than
//     SGR, or anything else) becomes ␛ (U+241B), and the rest of its
//     sequence is left as the visible text it is;
//   - C1 controls U+0080..U+009F become ␛ and their 7-bit form (U+009B
//     shows as "␛["), as a terminal would read them;
//   - other C0 controls and DEL become their Control Pictures (BEL shows
//     as ␇, U+2407: it only rings a bell or ends an OSC); \n, \t, \b and
//     \r pass: \r and \b only move the cursor on its line, which progress
//     bars need, and cannot send anything anywhere.
//
// Sequences split across writes are handled: at most maxSGR bytes are
// held back until Flush. A TermWriter is not safe for concurrent use.
type TermWriter struct {
	w    io.Writer
	held []byte // an ESC and what may still make it an SGR, or a lone 0xC2
	out  []byte
}

// NewTermWriter returns a TermWriter writing to w.
func NewTermWriter(w io.Writer) *TermWriter {
	return &TermWriter{w: w, held: make([]byte, 0, maxSGR), out: make([]byte, 0, 512)}
}

// Write neutralises p and writes what is settled. It reports len(p) when
// w took everything settled.
func (t *TermWriter) Write(p []byte) (int, error) {
	t.out = t.out[:0]
	for _, c := range p {
		t.feed(c)
	}
	if _, err := t.w.Write(t.out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes out what is held back (an unfinished sequence,
// neutralised), then flushes w when it can.
func (t *TermWriter) Flush() error {
	t.out = t.out[:0]
	t.release()
	if len(t.out) > 0 {
		if _, err := t.w.Write(t.out); err != nil {
			return err
		}
	}
	if f, ok := t.w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// feed appends c's share of the output to t.out.
func (t *TermWriter) feed(c byte) {
	if len(t.held) > 0 {
		if t.held[0] == 0xC2 {
			t.held = t.held[:0]
			if c >= 0x80 && c <= 0x9F {
				t.out = append(t.out, escPicture...)
				t.out = append(t.out, c-0x40)
				return
			}
			t.out = append(t.out, 0xC2)
			t.feed(c)
			return
		}
		if t.sgrContinues(c) {
			t.held = append(t.held, c)
			if c == 'm' {
				t.out = append(t.out, t.held...)
				t.held = t.held[:0]
			}
			return
		}
		t.release()
	}
	switch {
	case c == 0x1B:
		t.held = append(t.held, c)
	case c == 0xC2:
		t.held = append(t.held, c)
	case c == '\n' || c == '\t' || c == '\b' || c == '\r':
		t.out = append(t.out, c)
	case c < 0x20:
		t.out = utf8.AppendRune(t.out, 0x2400+rune(c))
	case c == 0x7F:
		t.out = append(t.out, "\u2421"...)
	default:
		t.out = append(t.out, c)
	}
}

// sgrContinues reports whether c, after the held ESC..., may still end as
// an SGR sequence within maxSGR bytes.
func (t *TermWriter) sgrContinues(c byte) bool {
	if len(t.held) == 1 {
		return c == '['
	}
	if len(t.held) >= maxSGR-1 && c != 'm' {
		return false
	}
	return c == 'm' || c == ';' || c == ':' || c >= '0' && c <= '9'
}

// release neutralises what is held: the ESC as ␛, the rest as text (it
// holds only '[', digits, ';' and ':'); a lone 0xC2 as it is.
func (t *TermWriter) release() {
	if len(t.held) == 0 {
		return
	}
	if t.held[0] == 0xC2 {
		t.out = append(t.out, 0xC2)
	} else {
		t.out = append(t.out, escPicture...)
		t.out = append(t.out, t.held[1:]...)
	}
	t.held = t.held[:0]
}
