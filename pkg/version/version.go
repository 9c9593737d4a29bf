// Package version says which build of YourCI is running: the release a
// `make dist` stamped into the binary, or else the commit `go build` read
// from the checkout.
package version

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
)

// stamped is set at link time by `make dist`:
//
//	-ldflags '-X github.com/yourci/yourci/pkg/version.stamped=v1.2.3'
//
// It stays empty in a plain `go build`.
var stamped string

// String is this binary's version: the stamped release when there is one,
// else the module version Go recorded (a `go install ...@v1.2.3`), else the
// commit it was built from (12 hex digits, "-dirty" with uncommitted
// changes), else "devel". It never returns "".
func String() string {
	info, _ := debug.ReadBuildInfo()
	return resolve(stamped, info)
}

// resolve is String's decision, apart from the process's own build
// information so that every case can be tested.
func resolve(stamped string, info *debug.BuildInfo) string {
	if stamped != "" {
		return stamped
	}
	if info == nil {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var revision string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision == "" {
		return "devel"
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if modified {
		revision += "-dirty"
	}
	return revision
}

// Line is what `-version` prints: the command's name as it was started,
// its version, the Go release that built it and the platform, e.g.
// "yci-worker v1.2.3 (go1.26.8 linux/amd64)".
func Line() string { return line(filepath.Base(os.Args[0])) }

func line(name string) string {
	return fmt.Sprintf("%s %s (%s %s/%s)", name, String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
