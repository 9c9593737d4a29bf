// Package limitstest gives tests working cgroup limits, or skips them where
// the box cannot create cgroups, unless YCI_REQUIRE_CGROUPS=1 or
// YCI_REQUIRE_BWRAP=1 (as CI sets, as root on a box with writable cgroups)
// makes that a failure.
package limitstest

import (
	"os"
	"testing"

	"github.com/yourci/yourci/pkg/limits"
)

// EnvRequire, set to 1, turns unusable cgroups into a test failure.
const EnvRequire = "YCI_REQUIRE_CGROUPS"

// Open returns Limits with cfg that have created and removed a cgroup.
func Open(tb testing.TB, cfg limits.Config) *limits.Limits {
	tb.Helper()
	l, err := limits.Open(cfg)
	if err != nil {
		if os.Getenv(EnvRequire) == "1" || os.Getenv("YCI_REQUIRE_BWRAP") == "1" {
			tb.Fatalf("cgroups are required (%s=1 or YCI_REQUIRE_BWRAP=1): %v", EnvRequire, err)
		}
		tb.Skipf("cgroups not usable (%v); set %s=1 to make this a failure", err, EnvRequire)
	}
	return l
}
