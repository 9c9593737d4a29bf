package limits

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"syscall"
)

// leftoverName matches the cgroups groupName makes.
var leftoverName = regexp.MustCompile(`^yci-([0-9]+)-[0-9]+$`)

// sweep removes the cgroups a worker process made below parents (keyed as
// hierarchy.dirs) when that process is no longer alive: a worker that was
// killed or crashed leaves its tests' cgroups, and whatever still runs in
// them, behind. It kills what is left in each, removes it, and returns
// how many it removed. The cgroups of live processes, the worker's own
// included, are kept.
func sweep(parents map[string]string, alive func(pid int) bool) (int, error) {
	leftovers := map[string]*Group{} // by name
	for key, parent := range parents {
		entries, err := os.ReadDir(parent)
		if err != nil {
			return 0, fmt.Errorf("looking for leftover cgroups in %s: %w", parent, err)
		}
		for _, e := range entries {
			m := leftoverName.FindStringSubmatch(e.Name())
			if m == nil || !e.IsDir() {
				continue
			}
			pid, err := strconv.Atoi(m[1])
			if err != nil || pid == os.Getpid() || alive(pid) {
				continue
			}
			g := leftovers[e.Name()]
			if g == nil {
				g = &Group{mode: V1, dirs: map[string]string{}}
				if _, v2 := parents[""]; v2 {
					g.mode = V2
				}
				leftovers[e.Name()] = g
			}
			g.dirs[key] = parent + "/" + e.Name()
		}
	}
	for name, g := range leftovers {
		if err := g.remove(); err != nil {
			return 0, fmt.Errorf("removing leftover cgroup %s: %w", name, err)
		}
	}
	return len(leftovers), nil
}

// alive reports whether a process pid exists (it may be a zombie, or a
// new process that reused the pid: a leftover is then kept, not killed).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
