package pipeline

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// ResolvePython returns the interpreter that name (such as "python3")
// really runs. Workers resolve it once at start: a version manager's shim
// in front of python3 (pyenv's is a bash script) can cost a second on every
// evaluation of a loaded box.
func ResolvePython(ctx context.Context, name string) (string, error) {
	if name == "" {
		name = defaultPython
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, "-I", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		return "", fmt.Errorf("finding the %s interpreter: %w", name, err)
	}
	path := strings.TrimSpace(string(out))
	if path == "" {
		return "", fmt.Errorf("finding the %s interpreter: it does not know its own path", name)
	}
	return path, nil
}
