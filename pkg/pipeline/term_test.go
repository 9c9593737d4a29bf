package pipeline

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// neutralise writes in through a TermWriter in chunks of size (all at
// once when size is 0) and returns what it wrote.
func neutralise(t testing.TB, in string, size int) string {
	t.Helper()
	var out bytes.Buffer
	tw := NewTermWriter(&out)
	for rest := []byte(in); len(rest) > 0; {
		n := len(rest)
		if size > 0 {
			n = min(size, n)
		}
		if w, err := tw.Write(rest[:n]); err != nil || w != n {
			t.Fatalf("Write = %d, %v; want %d, nil", w, err, n)
		}
		rest = rest[n:]
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestTermWriter(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in, want string }{
		{"plain_text_and_utf8_pass", "héllo wörld\n", "héllo wörld\n"},
		{"sgr_colours_pass", "\x1b[1;31mred\x1b[0m \x1b[38;5;208mo\x1b[m", "\x1b[1;31mred\x1b[0m \x1b[38;5;208mo\x1b[m"},
		{"osc52_clipboard_write_is_shown_not_done", "\x1b]52;c;ZWNobyBwd25lZA==\x07", "␛]52;c;ZWNobyBwd25lZA==␇"},
		{"title_change_with_st", "\x1b]0;owned\x1b\\", "␛]0;owned␛\\"},
		{"dcs_apc_pm_sos", "\x1bPq#0\x1b\\\x1b_a\x1b^b\x1bXc", "␛Pq#0␛\\␛_a␛^b␛Xc"},
		{"cursor_movement_and_erase", "\x1b[2J\x1b[H\x1b[10;5H\x1b[K", "␛[2J␛[H␛[10;5H␛[K"},
		{"csi_with_private_marker_is_not_sgr", "\x1b[?1049h\x1b[>4;2m", "␛[?1049h␛[>4;2m"},
		{"other_esc_sequences", "\x1bc\x1b7\x1b(0", "␛c␛7␛(0"},
		{"c1_controls_as_code_points", "a\u009b2Jb\u009d0;x\u009cc", "a␛[2Jb␛]0;x␛\\c"},
		{"c0_controls_become_pictures", "\x00\x07\x0b\x0c\x7f", "␀␇␋␌␡"},
		{"newline_tab_backspace_return_pass", "a\tb\bc\r\n", "a\tb\bc\r\n"},
		{"unfinished_sequence_at_the_end_is_neutralised", "x\x1b[31", "x␛[31"},
		{"overlong_sgr_is_neutralised", "\x1b[" + strings.Repeat("1;", 40) + "m", "␛[" + strings.Repeat("1;", 40) + "m"},
		{"lone_c2_lead_byte_is_kept", "\xc2\xa9 \xc2", "© \xc2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, size := range []int{0, 1, 2, 3, 7} {
				if got := neutralise(t, tc.in, size); got != tc.want {
					t.Errorf("in chunks of %d: %q, want %q", size, got, tc.want)
				}
			}
		})
	}
}

// TestTermWriterThenMaskingHidesASecretSplitByControls: the masker sees
// the bytes the log keeps, so a secret around a neutralised sequence is
// still masked, and one split by a sequence never shows joined.
func TestTermWriterThenMaskingHidesASecretSplitByControls(t *testing.T) {
	t.Parallel()
	const secret = "ghs_0123456789abcdef"
	var out bytes.Buffer
	mw := NewMaskingWriter(&out, []string{secret})
	tw := NewTermWriter(mw)
	in := "\x1b]0;" + secret + "\x07|" + secret[:6] + "\x1b[2K" + secret[6:] + "\n"
	for i := 0; i < len(in); i += 5 {
		if _, err := tw.Write([]byte(in[i:min(i+5, len(in))])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.Contains(got, secret) || strings.Contains(got, "\x1b") || !strings.Contains(got, "␛]0;") {
		t.Errorf("log %q: want the secret masked and the sequences shown, not acting", got)
	}
}

func FuzzTermWriter(f *testing.F) {
	for _, s := range []string{"\x1b[31mx\x1b[0m", "\x1b]52;c;eA==\x07", "\u009b2J", "\x1b[?25l", "a\x00b\r\n"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, in string, size int) {
		whole := neutralise(t, in, 0)
		if split := neutralise(t, in, 1+abs(size)%9); split != whole {
			t.Fatalf("chunking changes the output: %q vs %q", split, whole)
		}
		// Every ESC left must start an SGR: ESC [ digits ; : m.
		for i := 0; i < len(whole); i++ {
			switch c := whole[i]; {
			case c == 0x1b:
				j := i + 1
				if j >= len(whole) || whole[j] != '[' {
					t.Fatalf("ESC not starting a CSI at %d: %q", i, whole)
				}
				for j++; j < len(whole) && strings.IndexByte("0123456789;:", whole[j]) >= 0; j++ {
				}
				if j >= len(whole) || whole[j] != 'm' {
					t.Fatalf("ESC [ not ending in m at %d: %q", i, whole)
				}
			case c < 0x20 && c != '\n' && c != '\t' && c != '\b' && c != '\r', c == 0x7f:
				t.Fatalf("control byte %#x left at %d: %q", c, i, whole)
			}
		}
		for i, r := range whole {
			if r >= 0x80 && r <= 0x9f && r != utf8.RuneError {
				t.Fatalf("C1 control U+%04X left at %d: %q", r, i, whole)
			}
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestRunnerLogKeepsColoursAndShowsOtherControls runs a real test that
// prints colours, an OSC 52 clipboard write, a title change and cursor
// movement: its log keeps the colours and shows the rest inert.
func TestRunnerLogKeepsColoursAndShowsOtherControls(t *testing.T) {
	t.Parallel()
	a := attemptIn(t, `printf '\033[32mok\033[0m \033]52;c;cHduZWQ=\007\033]0;title\033\\\033[2J\033[H\302\2336n\n'`)
	res, log := runOK(t, &Runner{}, a)
	if res.Outcome != Passed {
		t.Fatalf("result = %v", res)
	}
	want := "\x1b[32mok\x1b[0m ␛]52;c;cHduZWQ=␇␛]0;title␛\\␛[2J␛[H␛[6n\n"
	if got := outputOf(t, log); got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

// BenchmarkTermWriter: the cost on a test's output, mostly plain text
// with colours.
func BenchmarkTermWriter(b *testing.B) {
	line := []byte("\x1b[32mok\x1b[0m   github.com/acme/widget/pkg/thing  0.123s  some ordinary test output\n")
	chunk := bytes.Repeat(line, 32<<10/len(line))
	tw := NewTermWriter(io.Discard)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		if _, err := tw.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
}
