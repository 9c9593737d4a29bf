package pipeline

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// maskCases are inputs and what a MaskingWriter with their secrets must
// write for them, whatever the writes they arrive in.
var maskCases = []struct {
	name    string
	secrets []string
	input   string
	want    string
}{
	{"no_secrets_passes_through", nil, "plain text\n", "plain text\n"},
	{"one_secret", []string{"hunter22"}, "pw=hunter22\n", "pw=***\n"},
	{"every_occurrence", []string{"hunter22"}, "hunter22hunter22 x hunter22", "****** x ***"},
	{"secret_at_the_very_end", []string{"hunter22"}, "end hunter22", "end ***"},
	{"prefix_of_a_secret_at_the_end_is_kept", []string{"hunter22"}, "almost hunter2", "almost hunter2"},
	{"short_secrets_are_ignored", []string{"abc", "", "hunter22"}, "abc hunter22", "abc ***"},
	{"longest_secret_wins_at_a_position", []string{"tok", "token", "token-123"}, "token-123 token-12", "*** ***-12"},
	{"leftmost_of_overlapping_secrets", []string{"abcdef", "defghi"}, "abcdefghi", "***ghi"},
	{"shorter_secret_inside_a_longer_prefix", []string{"abcdefgh", "cdef"}, "xxabcdefxx", "xxab***xx"},
	{"secret_repeating_itself", []string{"abab"}, "abababab", "******"},
	{"multi_line_secret", []string{"-----BEGIN KEY-----\nMIIE\n"}, "a\n-----BEGIN KEY-----\nMIIE\nb", "a\n***b"},
	{"binary_around_a_secret", []string{"s3cr3t!"}, "\x00\xffs3cr3t!\x00", "\x00\xff***\x00"},
}

// maskInChunks writes input to a MaskingWriter in chunks cut at cuts.
func maskInChunks(t *testing.T, secrets []string, input string, cuts ...int) string {
	t.Helper()
	var out bytes.Buffer
	m := NewMaskingWriter(&out, secrets)
	prev := 0
	for _, c := range append(cuts, len(input)) {
		n, err := m.Write([]byte(input[prev:c]))
		if err != nil || n != c-prev {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, c-prev)
		}
		prev = c
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.String()
}

func TestMaskingWriterMasksWhateverTheSplit(t *testing.T) {
	t.Parallel()
	for _, tt := range maskCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := maskInChunks(t, tt.secrets, tt.input); got != tt.want {
				t.Errorf("one write: got %q, want %q", got, tt.want)
			}
			for i := 0; i <= len(tt.input); i++ {
				if got := maskInChunks(t, tt.secrets, tt.input, i); got != tt.want {
					t.Errorf("split at %d: got %q, want %q", i, got, tt.want)
				}
			}
			var bytewise []int
			for i := 1; i < len(tt.input); i++ {
				bytewise = append(bytewise, i)
			}
			if got := maskInChunks(t, tt.secrets, tt.input, bytewise...); got != tt.want {
				t.Errorf("byte by byte: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMaskingWriterHoldsBackOnlyWhatMayBeASecret(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	m := NewMaskingWriter(&out, []string{"hunter22"})
	steps := []struct{ write, seen string }{
		{"line one\n", "line one\n"},
		{"no secret here", "line one\nno secret here"},
		{" but hun", "line one\nno secret here but "},
		{"ted\n", "line one\nno secret here but hunted\n"},
		{"hunter2", "line one\nno secret here but hunted\n"},
		{"2!", "line one\nno secret here but hunted\n***!"},
	}
	for _, s := range steps {
		if _, err := m.Write([]byte(s.write)); err != nil {
			t.Fatal(err)
		}
		if out.String() != s.seen {
			t.Fatalf("after writing %q the writer below has %q, want %q", s.write, out.String(), s.seen)
		}
	}
}

func TestMaskingWriterFlushWritesHeldBytes(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	m := NewMaskingWriter(&out, []string{"hunter22"})
	if _, err := m.Write([]byte("cut at hunt")); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "cut at hunt" {
		t.Errorf("after Flush: %q", out.String())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// failingWriter fails every write with err.
type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestMaskingWriterReportsUnderlyingErrorOnEveryCall(t *testing.T) {
	t.Parallel()
	errDisk := errors.New("disk on fire")
	for _, secrets := range [][]string{nil, {"hunter22"}} {
		m := NewMaskingWriter(failingWriter{errDisk}, secrets)
		if _, err := m.Write([]byte("some output\n")); !errors.Is(err, errDisk) {
			t.Errorf("secrets %q: Write error = %v", secrets, err)
		}
		if _, err := m.Write([]byte("more\n")); !errors.Is(err, errDisk) {
			t.Errorf("secrets %q: second Write error = %v", secrets, err)
		}
		if err := m.Flush(); !errors.Is(err, errDisk) {
			t.Errorf("secrets %q: Flush error = %v", secrets, err)
		}
	}
}

func FuzzMaskingWriter(f *testing.F) {
	secrets := []string{"hunter22", "abab", "token-123", "ter2"}
	for _, tt := range maskCases {
		f.Add(tt.input, len(tt.input)/2)
	}
	f.Add("xxhunter22hunter2abababtoken-12token-123", 9)
	f.Fuzz(func(t *testing.T, input string, cut int) {
		if cut < 0 || cut > len(input) {
			cut = len(input) / 2
		}
		whole := maskInChunks(t, secrets, input)
		if split := maskInChunks(t, secrets, input, cut); split != whole {
			t.Errorf("split at %d gives %q, one write %q", cut, split, whole)
		}
		for _, s := range secrets {
			if strings.Contains(whole, s) {
				t.Errorf("output %q still contains %q", whole, s)
			}
		}
	})
}
