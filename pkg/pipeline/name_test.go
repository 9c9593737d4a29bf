package pipeline

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		wantErr string // "" when the name is valid
	}{
		{"env_values_joined", "foo-x", ""},
		{"dots_and_underscores_inside", "py3.11_pg..16", ""},
		{"longest_allowed", strings.Repeat("a", MaxNameLength), ""},
		{"parent_traversal", "../../x", `'/' is not allowed`},
		{"dot_dot", "..", "must not start with '.'"},
		{"dot", ".", "must not start with '.'"},
		{"hidden", ".git", "must not start with '.'"},
		{"option_like", "-rf", "must not start with '-'"},
		{"slash", "a/b", `'/' is not allowed`},
		{"backslash", `a\b`, `'\\' is not allowed`},
		{"space", "a b", `' ' is not allowed`},
		{"nul", "a\x00b", `'\x00' is not allowed`},
		{"non_ascii", "café", `'é' is not allowed`},
		{"empty", "", "empty"},
		{"too_long", strings.Repeat("a", MaxNameLength+1), "101 bytes long"},
		{"checkout_directory", "source", "reserved"},
		{"checkout_directory_any_case", "Source", "reserved"},
		{"build_page", "index.html", "reserved for the build's page"},
		{"build_page_state", "build.json", "reserved for the build's page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateName(tt.input)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("ValidateName(%q) = %v, want nil", tt.input, err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("ValidateName(%q) = nil, want an error", tt.input)
			case tt.wantErr != "" && (!strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidName)):
				t.Errorf("ValidateName(%q) = %v, want ErrInvalidName saying %q", tt.input, err, tt.wantErr)
			}
		})
	}
}

func TestDerivedName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		values  []string
		want    string
		wantErr string
	}{
		{"values_joined_in_order", []string{"foo", "x"}, "foo-x", ""},
		{"no_values_numbered", nil, "test-4", ""},
		{"only_empty_values_numbered", []string{"", ""}, "test-4", ""},
		{"empty_values_skipped", []string{"", "3.11", ""}, "3.11", ""},
		{"unsafe_characters_replaced", []string{"postgres:16", "a b/c"}, "postgres_16-a_b_c", ""},
		{"traversal_flattened", []string{"../../x"}, "_._.._x", ""},
		{"leading_dash_replaced", []string{"-O2"}, "_O2", ""},
		{"multibyte_rune_is_one_replacement", []string{"ü"}, "_", ""},
		{"checkout_name_refused", []string{"source"}, "", "reserved"},
		{"too_long_refused", []string{strings.Repeat("v", 60), strings.Repeat("w", 60)}, "", "give it a name="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := derivedName(tt.values, 4)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("derivedName(%q) = %q, %v; want an error saying %q", tt.values, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("derivedName(%q) = %q, %v; want %q", tt.values, got, err, tt.want)
			}
		})
	}
}

// FuzzValidateName checks that every accepted name is a single, visible path
// element that stays inside the directory it is joined to, and that every
// name derived from env values is either valid or refused.
func FuzzValidateName(f *testing.F) {
	for _, seed := range []string{"foo-x", "../../x", "..", ".", "source", "a/b", "-rf", "x\x00", "café", "3.11"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if err := ValidateName(name); err == nil {
			if !filepath.IsLocal(name) || filepath.Base(name) != name || strings.ContainsAny(name, "/\\\x00") ||
				strings.HasPrefix(name, ".") || len(name) > MaxNameLength {
				t.Errorf("ValidateName(%q) accepted an unsafe name", name)
			}
			if dir := "/ws/pulls/1/2"; filepath.Dir(filepath.Join(dir, name)) != dir {
				t.Errorf("ValidateName(%q) accepted a name that leaves its directory", name)
			}
		} else if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, not wrapping ErrInvalidName", name, err)
		}
		derived, err := derivedName(strings.Split(name, "="), 1)
		if err == nil {
			if verr := ValidateName(derived); verr != nil {
				t.Errorf("derivedName(%q) = %q, which ValidateName refuses: %v", name, derived, verr)
			}
		}
	})
}
