package pipeline

import (
	"errors"
	"fmt"
	"strings"
)

// MaxNameLength is the longest test name, in bytes, that ValidateName accepts.
const MaxNameLength = 100

// ErrInvalidName is wrapped by every error ValidateName returns.
var ErrInvalidName = errors.New("invalid test name")

// reservedName is the build directory's checkout, which no test may shadow.
const reservedName = "source"

// ValidateName reports whether name may name a test: it becomes a status
// context (yci/<name>), a directory beside the build's source/ and part of a
// symlink's file name, so it must be one safe path element. A valid name is
// 1 to MaxNameLength bytes of [A-Za-z0-9._-], does not start with '.' or '-',
// is not "source" in any case, and is not "index.html" or "build.json",
// the build page's files beside the tests' directories. Errors wrap ErrInvalidName. Safe for
// concurrent use.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidName)
	case len(name) > MaxNameLength:
		return fmt.Errorf("%w: the name is %d bytes long, more than %d", ErrInvalidName, len(name), MaxNameLength)
	}
	for _, r := range name {
		if !nameChar(r) {
			return fmt.Errorf("%w %q: %q is not allowed; use letters, digits, '.', '_' and '-'", ErrInvalidName, name, r)
		}
	}
	switch {
	case name[0] == '.' || name[0] == '-':
		return fmt.Errorf("%w %q: it must not start with %q", ErrInvalidName, name, name[0])
	case strings.EqualFold(name, reservedName):
		return fmt.Errorf("%w %q: it is reserved for the build's checkout", ErrInvalidName, name)
	case name == "index.html" || name == "build.json":
		return fmt.Errorf("%w %q: it is reserved for the build's page", ErrInvalidName, name)
	}
	return nil
}

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
	if err := ValidateName(string(name)); err != nil {
		return "", fmt.Errorf("the name made from its env values: %w; give it a name=", err)
	}
	return string(name), nil
}
