package sandbox

import (
	"path/filepath"
	"strings"
)

// hostDirs are variables naming host directories that a confined command
// cannot see, or must not share: they are dropped, and HOME, TMPDIR and
// the caches are set anew.
var hostDirs = []string{
	"HOME", "TMPDIR", "PATH", "GOPATH",
	"XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR",
	"GOCACHE", "GOMODCACHE", "PIP_CACHE_DIR", "npm_config_cache",
}

// defaultPath is PATH inside when none of the host's entries is visible.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// confinedEnv is env for a command inside the sandbox: HOME and TMPDIR on
// its own tmpfs, PATH without the directories it cannot see, and, with a
// cache, XDG_CACHE_HOME and the Go, pip and npm caches inside it. These
// win over whatever env said, a test's own env included: a confined
// command has no other place to keep them.
func confinedEnv(env, visible []string, cache string) []string {
	path := ""
	out := make([]string, 0, len(env)+8)
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if name == "PATH" {
			path = value
		}
		if !isHostDir(name) {
			out = append(out, kv)
		}
	}
	dirs := visiblePath(path, visible)
	if len(dirs) == 0 {
		out = append(out, "PATH="+defaultPath)
	} else {
		out = append(out, "PATH="+strings.Join(dirs, ":"))
	}
	out = append(out, "HOME="+Home, "TMPDIR=/tmp")
	if cache != "" {
		out = append(out,
			"XDG_CACHE_HOME="+cache,
			"GOCACHE="+filepath.Join(cache, "go-build"),
			"GOMODCACHE="+filepath.Join(cache, "go-mod"),
			"PIP_CACHE_DIR="+filepath.Join(cache, "pip"),
			"npm_config_cache="+filepath.Join(cache, "npm"),
		)
	}
	return out
}

func isHostDir(name string) bool {
	for _, h := range hostDirs {
		if name == h {
			return true
		}
	}
	return false
}

// visiblePath returns the entries of the PATH value path that are visible
// inside (absolute and below one of visible) or relative, in order.
func visiblePath(path string, visible []string) []string {
	var dirs []string
	for _, d := range filepath.SplitList(path) {
		if d != "" && (!filepath.IsAbs(d) || under(visible, d)) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}
