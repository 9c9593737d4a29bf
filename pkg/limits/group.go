package limits

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// removeWait bounds how long remove kills what is left of a command before
// it gives up on the cgroup.
const removeWait = 10 * time.Second

// group is one command's cgroup: one directory per v1 controller, or one
// on v2.
type group struct {
	mode Mode
	dirs map[string]string // keyed as hierarchy.dirs
	cfg  Config
}

// seq numbers cgroups across every Limits of the process, so that two of
// them (a service and a -local run in one test binary) never share a name.
var seq atomic.Int64

func (l *Limits) create() (*group, error) {
	name := fmt.Sprintf("yci-%d-%d", os.Getpid(), seq.Add(1))
	g := &group{mode: l.h.mode, dirs: map[string]string{}, cfg: l.cfg}
	for key, parent := range l.parents {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			g.remove()
			return nil, fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
		g.dirs[key] = dir
	}
	for file, value := range g.settings() {
		if err := os.WriteFile(file, []byte(value), 0o644); err != nil {
			g.remove()
			return nil, fmt.Errorf("setting the command's limit: %w", err)
		}
	}
	return g, nil
}

// settings are the files to write and their values. Swap counts too where
// the kernel accounts it, or a limit on memory alone would push the tmpfs
// to swap instead of ending the command.
func (g *group) settings() map[string]string {
	out := map[string]string{}
	mem, pids := strconv.FormatInt(g.cfg.Memory, 10), strconv.FormatInt(g.cfg.Pids, 10)
	if g.mode == V2 {
		d := g.dirs[""]
		out[filepath.Join(d, "memory.max")] = mem
		out[filepath.Join(d, "memory.swap.max")] = "0"
		out[filepath.Join(d, "pids.max")] = pids
		if g.cfg.CPUWeight > 0 {
			out[filepath.Join(d, "cpu.weight")] = strconv.FormatInt(g.cfg.CPUWeight, 10)
		}
		g.dropMissing(out, filepath.Join(d, "memory.swap.max"))
		return out
	}
	out[filepath.Join(g.dirs["memory"], "memory.limit_in_bytes")] = mem
	out[filepath.Join(g.dirs["pids"], "pids.max")] = pids
	if d, ok := g.dirs["cpu"]; ok && g.cfg.CPUWeight > 0 {
		// v1 shares: 1024 is a normal process, as weight 100 is on v2.
		out[filepath.Join(d, "cpu.shares")] = strconv.FormatInt(max(2, g.cfg.CPUWeight*1024/100), 10)
	}
	return out
}

// dropMissing leaves out an optional file the kernel does not have.
func (g *group) dropMissing(out map[string]string, file string) {
	if _, err := os.Stat(file); err != nil {
		delete(out, file)
	}
}

// dirList is the cgroup directories in a fixed order, for the shim.
func (g *group) dirList() []string {
	var out []string
	for _, d := range g.dirs {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// exceeded reads whether the command went past a limit.
func (g *group) exceeded() *Exceeded {
	e := &Exceeded{Config: g.cfg}
	if g.mode == V2 {
		e.Memory = counter(filepath.Join(g.dirs[""], "memory.events"), "oom_kill") > 0
		e.Pids = counter(filepath.Join(g.dirs[""], "pids.events"), "max") > 0
	} else {
		// oom_kill counts the kills since 4.13; under_oom means a kill
		// is pending.
		oom := filepath.Join(g.dirs["memory"], "memory.oom_control")
		e.Memory = counter(oom, "oom_kill") > 0 || counter(oom, "under_oom") > 0
		e.Pids = counter(filepath.Join(g.dirs["pids"], "pids.events"), "max") > 0
	}
	if !e.Memory && !e.Pids {
		return nil
	}
	return e
}

// counter is the value of key in a flat-keyed cgroup file, 0 when absent.
func counter(file, key string) int64 {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// remove kills every process left in the cgroup and removes it. A pids
// limit keeps a fork bomb from outrunning the kills.
func (g *group) remove() error {
	var errs []error
	deadline := time.Now().Add(removeWait)
	for _, dir := range g.dirList() {
		for {
			pids, err := members(dir)
			if err != nil {
				errs = append(errs, err)
				break
			}
			for _, pid := range pids {
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
					errs = append(errs, fmt.Errorf("killing %d left in %s: %w", pid, dir, err))
				}
			}
			err = os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dir, err))
				break
			}
			// Killed processes leave the cgroup only once they are
			// reaped; give their parents a moment.
			time.Sleep(time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

func members(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the processes of %s: %w", dir, err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// delegate moves process pid into a leaf "worker" below dir and enables
// the controllers for dir's children, as v2 wants of a delegated subtree.
func delegate(dir string, pid int) error {
	leaf := filepath.Join(dir, "worker")
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating the worker's leaf cgroup (is the worker's cgroup delegated to it? Delegate=yes in its systemd unit): %w", err)
	}
	if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("moving the worker into %s: %w", leaf, err)
	}
	ctrl := "+memory +pids"
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers")); err == nil && hasWords(string(b), "cpu") {
		ctrl += " +cpu"
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(ctrl), 0o644); err != nil {
		return fmt.Errorf("enabling %s for the tests' cgroups in %s (Delegate=yes in the worker's systemd unit): %w", ctrl, dir, err)
	}
	return nil
}

// Available is the memory the worker may give its commands: the box's
// MemTotal, or the worker's own cgroup limit when that is lower.
func (l *Limits) Available() (int64, error) {
	total, err := memTotal()
	if err != nil {
		return 0, err
	}
	var own string
	switch l.h.mode {
	case V1:
		own = filepath.Join(l.h.dirs["memory"], "memory.limit_in_bytes")
	case V2:
		own = filepath.Join(l.h.dirs[""], "memory.max")
	}
	if own != "" {
		if b, err := os.ReadFile(own); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n < total {
				return n, nil
			}
		}
	}
	return total, nil
}

func memTotal() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("reading the box's memory: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("reading MemTotal: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("reading the box's memory: no MemTotal in /proc/meminfo")
}

// ProtectSelf lowers the calling process's oom_score_adj to adj (negative:
// the OOM killer then takes a test first). Only root, or a process with
// CAP_SYS_RESOURCE, may go below the value it started with.
func ProtectSelf(adj int) error {
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(adj)), 0o644); err != nil {
		return fmt.Errorf("lowering oom_score_adj to %d: %w", adj, err)
	}
	return nil
}

// ServiceScore is the oom_score_adj of YourCI's own processes: well below
// zero, so that the OOM killer takes a test (1000) and never the worker,
// the receiver or the JetStream server one of them embeds.
const ServiceScore = -900

// ProtectService lowers the calling process's oom_score_adj to
// ServiceScore, and logs once on log when it may not (an unprivileged
// user: the systemd units set OOMScoreAdjust instead). Commands call it
// once their configuration is settled, before they start serving.
func ProtectService(log *slog.Logger) {
	if err := ProtectSelf(ServiceScore); err != nil {
		log.Warn("the OOM killer may pick this process before a test", "err", err)
	}
}
