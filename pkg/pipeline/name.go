package pipeline

import (
	"fmt"
	"strings"

	"github.com/yourci/yourci/pkg/events"
)

// nameChar reports whether r may stand in a test name as
// events.ValidateTestName has it; derivedName replaces every other rune.
func nameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '.' || r == '_' || r == '-'
}

// derivedName is the default name of a test: its non-empty env values joined
// by '-' in the order .yci.py gave them, or test-<item> when there are none.
// Each character outside the safe set becomes '_', as does a leading '.' or
// '-', so "3.11" and "postgres:16" give "3.11-postgres_16"; two tests that
// end up with the same name are refused by the caller, never merged.
func derivedName(values []string, item int) (string, error) {
	var parts []string
	for _, v := range values {
		if v != "" {
			parts = append(parts, v)
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("test-%d", item), nil
	}
	name := []rune(strings.Join(parts, "-"))
	for i, r := range name {
		if !nameChar(r) || i == 0 && (r == '.' || r == '-') {
			name[i] = '_'
		}
	}
	if err := events.ValidateTestName(string(name)); err != nil {
		return "", fmt.Errorf("the name made from its env values: %w; give it a name=", err)
	}
	return string(name), nil
}
