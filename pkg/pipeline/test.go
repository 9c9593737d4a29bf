// Package pipeline turns a checkout of a pull request into tests: it
// evaluates the repository's .yci.py into a matrix of test configurations,
// runs each attempt of a test with its output streamed to a log, and decides
// when a failed attempt is retried. It knows nothing of GitHub or the queue.
package pipeline

import "time"

// Test is one configuration of a build's matrix.
type Test struct {
	// Name is the status context suffix and directory name of the test:
	// unique within a build and restricted to a safe character set.
	Name string
	// Command is run by bash in the test's source directory.
	Command string
	// Env is added to the test's environment.
	Env map[string]string
	// Timeout bounds one attempt; zero means the runner's default.
	Timeout time.Duration
	// Retries is how many times a failed attempt is tried again.
	Retries int
	// RetryIncrement is the wait before the first retry; the k-th retry
	// waits k times as long.
	RetryIncrement time.Duration
}
