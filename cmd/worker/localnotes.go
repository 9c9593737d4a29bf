package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/sandbox"
)

// homeSettings are files in a user's HOME where tools keep settings a
// test would otherwise pick up; a sandboxed test's HOME is fresh, so it
// sees none of them.
var homeSettings = []string{
	".gitconfig", ".config/git/config", ".config/go/env", ".npmrc",
	".config/pip/pip.conf", ".pip/pip.conf", ".cargo/config.toml", ".m2/settings.xml",
}

// hiddenSettings lists, as ~/path, the homeSettings that exist in home.
func hiddenSettings(home string) []string {
	var out []string
	for _, rel := range homeSettings {
		if fi, err := os.Stat(filepath.Join(home, rel)); err == nil && fi.Mode().IsRegular() {
			out = append(out, "~/"+rel)
		}
	}
	return out
}

// settingsNote is -local's start-up line naming the settings in home that
// sandboxed tests will not see, or "" when there are none.
func settingsNote(home string) string {
	hidden := hiddenSettings(home)
	if len(hidden) == 0 {
		return ""
	}
	return fmt.Sprintf("settings: tests do not see %s (their HOME is empty); put settings for tests in /etc (gitconfig, pip.conf, npmrc under npm's prefix) or $GOROOT/go.env, or in .yci.py's env",
		strings.Join(hidden, ", "))
}

// pythonNote says which interpreter evaluated .yci.py and which python3 a
// test gets: in the sandbox, the first on PATH's system directories (as in
// the service); without it, the first on the user's PATH, which may be a
// version manager's shim and so another interpreter.
func pythonNote(ctx context.Context, box *sandbox.Bwrap, evaluator string) string {
	tests, err := testsPython(ctx, box)
	if err != nil {
		tests = "unknown (" + err.Error() + ")"
	}
	return fmt.Sprintf("python: .yci.py evaluated by %s; tests' python3 is %s", describePython(ctx, evaluator), tests)
}

func testsPython(ctx context.Context, box *sandbox.Bwrap) (string, error) {
	var name string
	var err error
	if box == nil {
		name, err = exec.LookPath("python3")
	} else {
		name, err = box.LookPath("python3")
	}
	if err != nil {
		return "", fmt.Errorf("no python3 on PATH: %w", err)
	}
	resolved, err := pipeline.ResolvePython(ctx, name)
	if err != nil {
		return "", err
	}
	if resolved == name {
		return describePython(ctx, name), nil
	}
	return name + " -> " + describePython(ctx, resolved), nil
}

// describePython is path and the version it reports, or path alone when
// it does not answer.
func describePython(ctx context.Context, path string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-I", "-c", "import platform; print(platform.python_version())").Output()
	if err != nil {
		return path
	}
	return fmt.Sprintf("%s (Python %s)", path, strings.TrimSpace(string(out)))
}
