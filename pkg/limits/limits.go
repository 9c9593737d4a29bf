// Package limits runs each command the worker does not trust (a test
// attempt, a .yci.py evaluation) in a cgroup of its own with a memory
// limit (which also covers the tmpfs pages it writes), a process limit and
// a CPU weight, and makes the kernel's OOM killer prefer those commands to
// YourCI. It knows cgroup v1 (memory, pids, cpu hierarchies) and a
// delegated cgroup v2 subtree, and imports nothing of YourCI's.
package limits

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Config are the limits of each command.
type Config struct {
	// Memory is the most memory, in bytes, a command's processes and the
	// tmpfs pages they write may use together; past it the kernel's OOM
	// killer ends one of its processes. Zero means the memory available
	// to the worker (Available) divided by Share.
	Memory int64
	// Share divides the available memory when Memory is zero: the number
	// of commands that run at once.
	Share int64
	// Pids is the most processes and threads a command may have at once;
	// past it fork and clone fail with EAGAIN.
	Pids int64
	// CPUWeight is cgroup v2's cpu.weight (1 to 10000, 100 is a normal
	// process), mapped to cpu.shares on v1; zero leaves the default.
	CPUWeight int64
}

func (c Config) validate() error {
	var errs []error
	if c.Memory == 0 && c.Share < 1 {
		errs = append(errs, errors.New("no memory limit and no share to divide the memory by"))
	} else if c.Memory != 0 && c.Memory < 1<<20 {
		errs = append(errs, fmt.Errorf("memory limit %d is below 1 MiB", c.Memory))
	}
	if c.Pids < 8 {
		errs = append(errs, fmt.Errorf("process limit %d is below 8", c.Pids))
	}
	if c.CPUWeight < 0 || c.CPUWeight > 10000 {
		errs = append(errs, fmt.Errorf("CPU weight %d is not between 1 and 10000", c.CPUWeight))
	}
	return errors.Join(errs...)
}

// Limits creates a cgroup for each command it wraps. It is safe for
// concurrent use.
type Limits struct {
	h   hierarchy
	cfg Config
	// swept is how many leftover cgroups Open removed.
	swept int
	// parents are the directories attempt cgroups are made in, per
	// controller key of h.dirs.
	parents map[string]string
}

// Unlimited returns Limits whose Groups create no cgroup: the caller
// still raises each command's oom_score_adj with RaiseScore. It never
// fails; the error keeps the signature of Open.
func Unlimited() (*Limits, error) {
	return &Limits{}, nil
}

// Open detects the worker's cgroup hierarchy and checks that it may create
// cgroups with cfg's limits there. On v2 it moves the whole process into a
// leaf "worker" below its own cgroup and enables the memory, pids and cpu
// controllers for its children (v2 forbids processes in inner cgroups):
// the worker's cgroup must be delegated to it (systemd's Delegate=yes).
// The error names what is missing.
func Open(cfg Config) (*Limits, error) {
	procCgroup, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("reading the worker's cgroups: %w", err)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mounts: %w", err)
	}
	return open(cfg, string(procCgroup), string(mountinfo), "", os.Getpid())
}

func open(cfg Config, procCgroup, mountinfo, root string, pid int) (*Limits, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	h, err := detect(procCgroup, mountinfo, root)
	if err != nil {
		return nil, fmt.Errorf("finding the cgroups to limit tests with: %w", err)
	}
	l := &Limits{h: h, cfg: cfg, parents: h.dirs}
	if cfg.Memory == 0 {
		avail, err := l.Available()
		if err != nil {
			return nil, err
		}
		l.cfg.Memory = avail / cfg.Share
	}
	if h.mode == V2 {
		if err := delegate(h.dirs[""], pid); err != nil {
			return nil, err
		}
	}
	if l.swept, err = sweep(l.parents, alive); err != nil {
		return nil, err
	}
	// One throwaway cgroup proves the limits can be written.
	g, err := l.create()
	if err != nil {
		return nil, err
	}
	if err := g.remove(); err != nil {
		return nil, err
	}
	return l, nil
}

// Swept is how many cgroups of earlier worker processes, gone since, Open
// found, emptied (killing what was left in them) and removed.
func (l *Limits) Swept() int { return l.swept }

// Mode is how the limits are enforced.
func (l *Limits) Mode() Mode { return l.h.mode }

// Config is the limits applied to each command.
func (l *Limits) Config() Config { return l.cfg }

// String says which limits are enforced and how, for the start-up log.
func (l *Limits) String() string {
	if l.h.mode == None {
		return "none (tests only get oom_score_adj 1000)"
	}
	cpu := "default CPU weight"
	if l.cfg.CPUWeight > 0 {
		cpu = "CPU weight " + strconv.FormatInt(l.cfg.CPUWeight, 10)
	}
	if l.h.mode == V1 && l.h.dirs["cpu"] == "" {
		cpu = "no CPU weight (cpu controller not mounted)"
	}
	return fmt.Sprintf("%s: memory %s, %d processes, %s per test and evaluation", l.h.mode, Bytes(l.cfg.Memory), l.cfg.Pids, cpu)
}

// Group creates the cgroup of one command, with the configured limits.
// The caller starts the command with the Group's Start and must call its
// Close exactly once, after the command was waited for or when it could
// not start. With mode None the Group creates nothing and Start is
// cmd.Start.
func (l *Limits) Group() (*Group, error) {
	if l.h.mode == None {
		return &Group{}, nil
	}
	return l.create()
}

// Exceeded is the error Group.Close returns for a command that went past a
// limit.
type Exceeded struct {
	// Memory is set when the OOM killer killed one of its processes.
	Memory bool
	// Pids is set when a fork failed for the process limit.
	Pids   bool
	Config Config
}

func (e *Exceeded) Error() string {
	var parts []string
	if e.Memory {
		parts = append(parts, "killed: used more than "+Bytes(e.Config.Memory)+" of memory (its processes and its /tmp and HOME together)")
	}
	if e.Pids {
		parts = append(parts, fmt.Sprintf("stopped at the limit of %d processes: fork failed", e.Config.Pids))
	}
	return strings.Join(parts, "; ")
}

// Errored reports whether the limit makes the run an error rather than a
// failure: a process limit breaks the command in ways the test did not
// choose, where running out of memory is what the test did.
func (e *Exceeded) Errored() bool { return e.Pids && !e.Memory }

// Bytes formats n in binary units, as the limits are quoted.
func Bytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Usable reports, without changing anything, whether Open could enforce
// limits here: a hierarchy with memory and pids controllers is found and
// the process may create cgroups below its own in each. A nil error does
// not promise Open succeeds (a v2 cgroup must also be delegated); a
// non-nil one names what is missing. Launchers such as the demo call it
// to decide between limits and -limits none before starting a worker.
func Usable() error {
	procCgroup, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return fmt.Errorf("reading the process's cgroups: %w", err)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("reading the mounts: %w", err)
	}
	return usable(string(procCgroup), string(mountinfo), "")
}

func usable(procCgroup, mountinfo, root string) error {
	h, err := detect(procCgroup, mountinfo, root)
	if err != nil {
		return fmt.Errorf("finding the cgroups to limit tests with: %w", err)
	}
	for _, dir := range h.dirs {
		if err := unix.Access(dir, unix.W_OK); err != nil {
			return fmt.Errorf("creating cgroups in %s: %w", dir, err)
		}
	}
	return nil
}
