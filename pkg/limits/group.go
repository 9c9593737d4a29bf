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

// Group is one command's cgroup: one directory per v1 controller, or one
// on v2; with mode None, no cgroup at all. Start and Close are called
// once each, by one goroutine.
type Group struct {
	mode Mode
	dirs map[string]string // keyed as hierarchy.dirs
	// parents are the worker's own cgroups, keyed as dirs, that the
	// thread starting the command returns to on v1.
	parents map[string]string
	cfg     Config
}

// seq numbers cgroups across every Limits of the process, so that two of
// them (a service and a -local run in one test binary) never share a name.
var seq atomic.Int64

// groupName is the name of a command's cgroup: the worker's pid, so that
// a later worker can tell a dead one's leftovers (sweep), and a number.
func groupName(pid int, n int64) string { return fmt.Sprintf("yci-%d-%d", pid, n) }

func (l *Limits) create() (*Group, error) {
	name := groupName(os.Getpid(), seq.Add(1))
	g := &Group{mode: l.h.mode, dirs: map[string]string{}, parents: l.parents, cfg: l.cfg}
	for key, parent := range l.parents {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, errors.Join(fmt.Errorf("creating cgroup %s: %w", dir, err), g.remove())
		}
		g.dirs[key] = dir
	}
	for _, s := range g.settings() {
		if err := os.WriteFile(s.file, []byte(s.value), 0o644); err != nil {
			return nil, errors.Join(fmt.Errorf("setting the command's limit: %w", err), g.remove())
		}
	}
	return g, nil
}

// setting is a value to write to a cgroup file.
type setting struct{ file, value string }

// settings are the files to write and their values, in the order the
// kernel accepts them (v1's memory+swap limit may not be below the memory
// limit). Swap counts too where the kernel accounts it, or a limit on
// memory alone would push the tmpfs to swap instead of ending the command.
// On v2 memory.oom.group makes an OOM kill end every process of the
// command, not one of them, so that no half of a test runs on.
func (g *Group) settings() []setting {
	var out []setting
	add := func(dir, file, value string, optional bool) {
		p := filepath.Join(dir, file)
		if optional {
			if _, err := os.Stat(p); err != nil {
				return
			}
		}
		out = append(out, setting{p, value})
	}
	mem, pids := strconv.FormatInt(g.cfg.Memory, 10), strconv.FormatInt(g.cfg.Pids, 10)
	if g.mode == V2 {
		d := g.dirs[""]
		add(d, "memory.max", mem, false)
		add(d, "memory.swap.max", "0", true)
		add(d, "memory.oom.group", "1", false)
		add(d, "pids.max", pids, false)
		if g.cfg.CPUWeight > 0 {
			add(d, "cpu.weight", strconv.FormatInt(g.cfg.CPUWeight, 10), false)
		}
		return out
	}
	add(g.dirs["memory"], "memory.limit_in_bytes", mem, false)
	// Only with swap accounting (swapaccount=1); without, swap is not
	// charged and the limit above is all there is.
	add(g.dirs["memory"], "memory.memsw.limit_in_bytes", mem, true)
	add(g.dirs["pids"], "pids.max", pids, false)
	if d, ok := g.dirs["cpu"]; ok && g.cfg.CPUWeight > 0 {
		// v1 shares: 1024 is a normal process, as weight 100 is on v2.
		add(d, "cpu.shares", strconv.FormatInt(max(2, g.cfg.CPUWeight*1024/100), 10), false)
	}
	return out
}

// dirList is the cgroup directories in a fixed order.
func (g *Group) dirList() []string {
	var out []string
	for _, d := range g.dirs {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// Close kills whatever is left in the cgroup, removes it, and returns an
// *Exceeded when the command went past a limit (joined with any error
// removing it).
func (g *Group) Close() error {
	if g.mode == None {
		return nil
	}
	exceeded := g.exceeded()
	if err := g.remove(); err != nil {
		return errors.Join(exceeded, err)
	}
	if exceeded != nil {
		return exceeded
	}
	return nil
}

// exceeded reads whether the command went past a limit.
func (g *Group) exceeded() *Exceeded {
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
func (g *Group) remove() error {
	var errs []error
	deadline := time.Now().Add(removeWait)
	self := os.Getpid()
	for _, dir := range g.dirList() {
		if g.mode == V2 {
			// cgroup.kill (Linux 5.14) kills every process at once, and
			// those forked meanwhile; the loop below is then a wait.
			kill := filepath.Join(dir, "cgroup.kill")
			if _, err := os.Stat(kill); err == nil {
				if err := os.WriteFile(kill, []byte("1"), 0o644); err != nil {
					errs = append(errs, fmt.Errorf("killing what is left in %s: %w", dir, err))
				}
			}
		}
		for {
			pids, err := members(dir)
			if err != nil {
				errs = append(errs, err)
				break
			}
			for _, pid := range pids {
				if pid == self {
					// A thread that could not leave after starting
					// the command (Start on v1) is ending.
					continue
				}
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
