package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// KillLeftovers ends the process groups of every process working inside
// dir: what an earlier attempt of a test left running when its worker was
// killed (SIGKILL, OOM) before it could stop the attempt's group. A process
// is recognised by its working directory, not by a remembered pid, so a
// reused pid can never make it kill a stranger. It returns how many groups
// it signalled.
func KillLeftovers(dir string) (int, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return 0, fmt.Errorf("resolving %s: %w", dir, err)
	}
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("listing processes: %w", err)
	}
	self := syscall.Getpgrp()
	groups := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err != nil || !within(dir, strings.TrimSuffix(cwd, " (deleted)")) {
			continue
		}
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid != self && pgid > 1 {
			groups[pgid] = true
		}
	}
	var errs []error
	for pgid := range groups {
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("killing process group %d: %w", pgid, err))
		}
	}
	return len(groups), errors.Join(errs...)
}

func within(dir, path string) bool {
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}
