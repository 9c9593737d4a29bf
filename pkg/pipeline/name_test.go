package pipeline

import (
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/events"
)

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

// FuzzDerivedName checks that every name derived from env values is one
// events.ValidateTestName accepts, or is refused with a hint to give the
// test a name: a derived name is never carried unchecked.
func FuzzDerivedName(f *testing.F) {
	for _, seed := range []string{"foo=x", "../../x", "..", ".", "source", "a/b", "-rf", "x\x00", "café", "3.11=pg:16", "Index.html"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, values string) {
		derived, err := derivedName(strings.Split(values, "="), 1)
		if err != nil {
			if !strings.Contains(err.Error(), "give it a name=") {
				t.Errorf("derivedName(%q) = %v, without the hint to give a name", values, err)
			}
			return
		}
		if verr := events.ValidateTestName(derived); verr != nil {
			t.Errorf("derivedName(%q) = %q, which events.ValidateTestName refuses: %v", values, derived, verr)
		}
	})
}
