package events

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateTestName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		wantErr string // "" when the name is valid
	}{
		{"env_values_joined", "foo-x", ""},
		{"dots_and_underscores_inside", "py3.11_pg..16", ""},
		{"longest_allowed", strings.Repeat("a", MaxTestNameLen), ""},
		{"source_inside_a_longer_name", "source-maps", ""},
		{"empty", "", "is empty"},
		{"too_long", strings.Repeat("a", MaxTestNameLen+1), "101 bytes long"},
		{"parent_traversal", "../../x", `'/', which`},
		{"dot_dot", "..", "must not start with '.'"},
		{"dot", ".", "must not start with '.'"},
		{"hidden", ".git", "must not start with '.'"},
		{"option_like", "-rf", "must not start with '-'"},
		{"slash", "a/b", `'/'`},
		{"backslash", `a\b`, `'\\'`},
		{"space", "a b", `' '`},
		{"nul", "a\x00b", `'\x00'`},
		{"non_ascii", "café", `'é'`},
		{"invalid_utf8", "a\xffb", `'�'`},
		{"checkout_directory", "source", "its own source"},
		{"checkout_directory_any_case", "SoUrCe", "its own source"},
		{"build_page", "index.html", "its own index.html"},
		{"build_page_any_case", "Index.HTML", "its own index.html"},
		{"build_state", "build.json", "its own build.json"},
		{"build_state_any_case", "BUILD.json", "its own build.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateTestName(tt.input)
			var nameErr *TestNameError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("ValidateTestName(%q) = %v, want nil", tt.input, err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("ValidateTestName(%q) = nil, want an error", tt.input)
			case tt.wantErr != "" && (!strings.Contains(err.Error(), tt.wantErr) ||
				!errors.Is(err, ErrInvalidEvent) || !errors.As(err, &nameErr)):
				t.Errorf("ValidateTestName(%q) = %v, want a *TestNameError matching ErrInvalidEvent saying %q", tt.input, err, tt.wantErr)
			}
		})
	}
}

// FuzzValidateName checks that every accepted test name is a single,
// visible path element that stays inside the directory it is joined to,
// names none of the build directory's own files on a case-insensitive file
// system, and can be a NATS subject token as it is; and that every refusal
// is an ErrInvalidEvent.
func FuzzValidateName(f *testing.F) {
	for _, seed := range []string{"foo-x", "../../x", "..", ".", "source", "SOURCE", "index.html", "a/b", "-rf", "x\x00", "café", "3.11", "a*b", "a>b"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateTestName(name)
		if err != nil {
			if !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("ValidateTestName(%q) = %v, not wrapping ErrInvalidEvent", name, err)
			}
			return
		}
		if !filepath.IsLocal(name) || filepath.Base(name) != name || strings.ContainsAny(name, "/\\\x00 \t\n*>") ||
			strings.HasPrefix(name, ".") || strings.HasPrefix(name, "-") || len(name) > MaxTestNameLen {
			t.Errorf("ValidateTestName(%q) accepted an unsafe name", name)
		}
		if dir := "/ws/pulls/1/2"; filepath.Dir(filepath.Join(dir, name)) != dir {
			t.Errorf("ValidateTestName(%q) accepted a name that leaves its directory", name)
		}
		for _, own := range []string{"source", "index.html", "build.json"} {
			if strings.EqualFold(name, own) {
				t.Errorf("ValidateTestName(%q) accepted the build directory's own %s", name, own)
			}
		}
	})
}
