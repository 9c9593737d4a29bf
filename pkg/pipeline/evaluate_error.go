package pipeline

import (
	"fmt"
	"strings"
)

// ConfigFile is the file, at the root of a repository, that describes its tests.
const ConfigFile = ".yci.py"

// ConfigError is a problem with a repository's .yci.py: the pull request's
// fault, reported on it as an error status, never worth retrying on another
// worker. Error is short enough for a status description; Detail is for the
// log.
type ConfigError struct {
	// File is the file at fault, relative to the checkout: usually .yci.py,
	// or a module it imports.
	File string
	// Line is the 1-based line in File, or 0 when no line is to blame.
	Line int
	// Message says what is wrong and, where one is known, the fix.
	Message string
	// Output is the rest of the story: a Python traceback, an example, and
	// what .yci.py printed (bounded in size).
	Output string
}

// Error returns "file:line: message", or "file: message" without a line.
func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Message)
}

// Detail returns Error followed by Output, for the build's log.
func (e *ConfigError) Detail() string {
	var b strings.Builder
	b.WriteString(e.Error())
	b.WriteString("\n")
	if out := strings.TrimRight(e.Output, "\n"); out != "" {
		b.WriteString("\n")
		b.WriteString(out)
		b.WriteString("\n")
	}
	return b.String()
}

// configExample is shown when a repository has no usable .yci.py.
const configExample = `YourCI runs the tests that .yci.py, at the root of the repository,
describes. A minimal one, running ./test.sh twice with a different PYTHON,
each retried up to 3 times 10, 20 and 30 minutes after a failure:

    from yci.retry import IncrementalRetry
    from yci.run import Bash

    def test_generator(build_id, pull):
        for python in ['3.11', '3.12']:
            yield IncrementalRetry(Bash('./test.sh', env={'PYTHON': python}),
                                   retries=3, retry_increment=600)
`

// withOutput appends what the evaluated file printed to an error's Output.
func (e *ConfigError) withOutput(printed string) *ConfigError {
	if printed == "" {
		return e
	}
	if e.Output != "" && !strings.HasSuffix(e.Output, "\n") {
		e.Output += "\n"
	}
	if e.Output != "" {
		e.Output += "\n"
	}
	e.Output += "Output of " + ConfigFile + " (stdout and stderr):\n" + printed
	return e
}
