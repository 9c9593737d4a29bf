package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/events"
)

func TestEncodeToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain_name_is_unchanged", "yourci-web_2", "yourci-web_2"},
		{"dot_is_escaped", "my.org", "my=2Eorg"},
		{"wildcards_and_space_are_escaped", "a *>b", "a=20=2A=3Eb"},
		{"escape_character_is_escaped", "a=b", "a=3Db"},
		{"empty_is_a_lone_escape", "", "="},
		{"utf8_is_escaped_bytewise", "é", "=C3=A9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := events.EncodeToken(tt.in); got != tt.want {
				t.Errorf("EncodeToken(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if back, err := events.DecodeToken(tt.want); err != nil || back != tt.in {
				t.Errorf("DecodeToken(%q) = %q, %v; want %q", tt.want, back, err, tt.in)
			}
		})
	}
}

func TestDecodeTokenRefusesWhatEncodeNeverWrites(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "a.b", "a b", "=2e", "=41", "=4", "a=", "==", "=ZZ"} {
		t.Run(bad, func(t *testing.T) {
			t.Parallel()
			if got, err := events.DecodeToken(bad); !errors.Is(err, events.ErrBadToken) {
				t.Errorf("DecodeToken(%q) = %q, %v; want ErrBadToken", bad, got, err)
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	t.Parallel()
	repo := events.Repo{Owner: "my.org", Name: "web app*>"}
	if got, want := events.PullSubject(repo), "yci.pull.my=2Eorg.web=20app=2A=3E"; got != want {
		t.Errorf("PullSubject = %q, want %q", got, want)
	}
	if got, want := events.TestSubject(repo), "yci.test.my=2Eorg.web=20app=2A=3E"; got != want {
		t.Errorf("TestSubject = %q, want %q", got, want)
	}
}

func FuzzTokenRoundTrip(f *testing.F) {
	for _, seed := range []string{"", "owner", "my.org", "a b", "*", ">", "=", "=2E", "é", "\x00\xff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := events.EncodeToken(s)
		if enc == "" {
			t.Fatalf("EncodeToken(%q) is empty", s)
		}
		if i := strings.IndexFunc(enc, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '=')
		}); i >= 0 {
			t.Fatalf("EncodeToken(%q) = %q has %q outside [A-Za-z0-9_=-]", s, enc, enc[i])
		}
		dec, err := events.DecodeToken(enc)
		if err != nil || dec != s {
			t.Fatalf("DecodeToken(EncodeToken(%q)) = %q, %v", s, dec, err)
		}
	})
}

func FuzzDecodeToken(f *testing.F) {
	for _, seed := range []string{"", "=", "abc", "a=2Eb", "=2e", "=41", "a.b", "=C3=A9"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		dec, err := events.DecodeToken(tok)
		if err != nil {
			return
		}
		if enc := events.EncodeToken(dec); enc != tok {
			t.Fatalf("DecodeToken(%q) = %q, which encodes to %q: two encodings of one name", tok, dec, enc)
		}
	})
}
