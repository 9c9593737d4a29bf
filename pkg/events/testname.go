package events

import (
	"fmt"
	"strings"
)

// MaxTestNameLen is the longest test name, in bytes, ValidateTestName accepts.
const MaxTestNameLen = 100

// reservedTestNames are the files and directories a build directory holds
// beside its tests' directories: the checkout and the build page. A test
// named like one of them would shadow it, on a case-insensitive file system
// too, so they are compared without case.
var reservedTestNames = []string{"source", "index.html", "build.json"}

// TestNameError says why ValidateTestName refused a name, in words fit to
// show the author of .yci.py or of a comment. It matches ErrInvalidEvent
// under errors.Is: such a name never becomes valid by retrying.
type TestNameError struct {
	Name   string // the refused name, truncated to 64 bytes
	Reason string // what is wrong, e.g. "must not start with '.'"
}

// Error implements error.
func (e *TestNameError) Error() string {
	if e.Name == "" {
		return "test name " + e.Reason
	}
	return fmt.Sprintf("test name %q %s", e.Name, e.Reason)
}

// Is makes a TestNameError an ErrInvalidEvent.
func (e *TestNameError) Is(target error) bool { return target == ErrInvalidEvent }

// ValidateTestName reports whether name may name a test. It is the one rule
// every edge shares: the comment and button parsers in the receiver, the
// evaluator that reads .yci.py, the queue and the workspace. A name becomes
// a status context (yci/<name>), a check run's name, a NATS subject token
// and a directory beside the build's source/, so it must be one safe path
// element: 1 to MaxTestNameLen bytes of [A-Za-z0-9._-], not starting with
// '.' or '-', and not "source", "index.html" or "build.json" in any case.
// A refusal is a *TestNameError. Safe for concurrent use.
func ValidateTestName(name string) error {
	refuse := func(format string, args ...any) error {
		return &TestNameError{Name: truncated(name), Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case name == "":
		return refuse("is empty")
	case len(name) > MaxTestNameLen:
		return refuse("is %d bytes long, more than %d", len(name), MaxTestNameLen)
	}
	for _, r := range name {
		if r > 0x7f || !alnum(byte(r)) && r != '.' && r != '_' && r != '-' {
			return refuse("has %q, which is not allowed; use letters, digits, '.', '_' and '-'", r)
		}
	}
	if name[0] == '.' || name[0] == '-' {
		return refuse("must not start with %q", name[0])
	}
	for _, r := range reservedTestNames {
		if strings.EqualFold(name, r) {
			return refuse("is reserved: the build directory holds its own %s", r)
		}
	}
	return nil
}
