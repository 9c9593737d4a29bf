// Package sandboxtest gives tests a working bubblewrap sandbox, or skips
// them where bubblewrap cannot run, unless YCI_REQUIRE_BWRAP=1 (as CI sets)
// makes that a failure.
package sandboxtest

import (
	"os"
	"testing"

	"github.com/yourci/yourci/pkg/sandbox"
)

// EnvRequire, set to 1, turns a missing or broken bubblewrap into a test
// failure instead of a skip.
const EnvRequire = "YCI_REQUIRE_BWRAP"

// New returns a Bwrap with opts that has passed its probe.
func New(tb testing.TB, opts sandbox.Options) *sandbox.Bwrap {
	tb.Helper()
	b, err := sandbox.New(opts)
	if err == nil {
		err = b.Probe(tb.Context())
	}
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatalf("bubblewrap is required (%s=1): %v", EnvRequire, err)
		}
		tb.Skipf("bubblewrap not usable (%v); set %s=1 to make this a failure", err, EnvRequire)
	}
	return b
}

// Available reports whether bubblewrap works here, failing tb when it does
// not and YCI_REQUIRE_BWRAP=1.
func Available(tb testing.TB) bool {
	tb.Helper()
	b, err := sandbox.New(sandbox.Options{})
	if err == nil {
		err = b.Probe(tb.Context())
	}
	if err != nil && os.Getenv(EnvRequire) == "1" {
		tb.Fatalf("bubblewrap is required (%s=1): %v", EnvRequire, err)
	}
	return err == nil
}
