package limits

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Mode is the kind of cgroup hierarchy the limits are enforced with.
type Mode int

const (
	// None enforces no limit: commands only get oom_score_adj 1000.
	None Mode = iota
	// V1 uses the memory, pids and (when mounted) cpu hierarchies of
	// cgroup v1, as on hybrid boxes.
	V1
	// V2 uses a delegated subtree of the unified hierarchy.
	V2
)

func (m Mode) String() string {
	switch m {
	case V1:
		return "cgroup v1"
	case V2:
		return "cgroup v2"
	}
	return "none"
}

// hierarchy is where the worker's own cgroups are, as detected.
type hierarchy struct {
	mode Mode
	// dirs are the worker's cgroup directory per controller ("memory",
	// "pids", "cpu") on v1; on v2 the single key "" is the worker's
	// cgroup in the unified hierarchy.
	dirs map[string]string
}

// detect reads which hierarchy the process is in from the contents of
// /proc/self/cgroup and /proc/self/mountinfo, with paths below root (""
// on a real box; a fake cgroupfs in tests). It prefers v2 when the
// unified hierarchy has the memory and pids controllers; otherwise v1
// needs memory and pids mounted.
func detect(procCgroup, mountinfo, root string) (hierarchy, error) {
	mounts, err := parseMountinfo(mountinfo)
	if err != nil {
		return hierarchy{}, err
	}
	paths := map[string]string{} // controller ("" for v2) -> cgroup path
	for _, line := range strings.Split(strings.TrimSpace(procCgroup), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			paths[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			paths[c] = parts[2]
		}
	}
	var v2err error
	if p, ok := paths[""]; ok {
		if m, ok := mounts[""]; ok {
			dir := filepath.Join(root, m.point, relative(p, m.root))
			ctrl, err := os.ReadFile(filepath.Join(root, m.point, "cgroup.controllers"))
			switch {
			case err != nil:
				v2err = fmt.Errorf("reading the controllers of %s: %w", m.point, err)
			case hasWords(string(ctrl), "memory", "pids"):
				return hierarchy{mode: V2, dirs: map[string]string{"": dir}}, nil
			default:
				v2err = fmt.Errorf("cgroup v2 at %s has no memory and pids controllers (it has %q)", m.point, strings.TrimSpace(string(ctrl)))
			}
		}
	}
	h := hierarchy{mode: V1, dirs: map[string]string{}}
	for _, c := range []string{"memory", "pids", "cpu"} {
		p, okp := paths[c]
		m, okm := mounts[c]
		if !okp || !okm {
			if c == "cpu" {
				continue
			}
			return hierarchy{}, errors.Join(v2err, fmt.Errorf("cgroup v1 %s controller not mounted", c))
		}
		h.dirs[c] = filepath.Join(root, m.point, relative(p, m.root))
	}
	return h, nil
}

type mount struct{ root, point string }

// parseMountinfo returns the cgroup mounts by controller, "" for cgroup2.
func parseMountinfo(s string) (map[string]mount, error) {
	out := map[string]mount{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		m := mount{root: fields[3], point: unescape(fields[4])}
		switch fields[sep+1] {
		case "cgroup2":
			out[""] = m
		case "cgroup":
			for _, opt := range strings.Split(fields[sep+3], ",") {
				if _, dup := out[opt]; !dup {
					out[opt] = m
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return out, nil
}

// relative is cgroup path p as seen below a mount of root (a container's
// cgroup namespace mounts its own cgroup as "/").
func relative(p, root string) string {
	if root == "/" {
		return p
	}
	if rel, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(rel, "..") {
		return "/" + rel
	}
	return p
}

func unescape(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

func hasWords(s string, words ...string) bool {
	have := strings.Fields(s)
	for _, w := range words {
		found := false
		for _, h := range have {
			if h == w {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
