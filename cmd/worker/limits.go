package main

import (
	"fmt"
	"log/slog"

	"github.com/yourci/yourci/pkg/envflag"
	"github.com/yourci/yourci/pkg/limits"
)

// LimitsOptions say what each test attempt and .yci.py evaluation may use.
type LimitsOptions struct {
	// Mode is "cgroup" (v1 or v2, detected) or "none".
	Mode string
	// Memory is in bytes; zero means the worker's memory divided by -j.
	Memory, Pids, CPUWeight int64
}

func (o *LimitsOptions) addFlags(fs *envflag.Set) {
	fs.StringVar(&o.Mode, "limits", "cgroup", "per-test limits: `cgroup` (v1 or a delegated v2 subtree, detected) or none")
	fs.Env("limits", "YCI_LIMITS")
	fs.Int64Var(&o.Memory, "memory-limit", 0, "`BYTES` of memory (with its /tmp and HOME) each test may use; 0 means the box's or the worker's cgroup's memory divided by -j")
	fs.Env("memory-limit", "YCI_MEMORY_LIMIT")
	fs.Int64Var(&o.Pids, "pids-limit", 4096, "`N` processes and threads each test may have at once")
	fs.Env("pids-limit", "YCI_PIDS_LIMIT")
	fs.Int64Var(&o.CPUWeight, "cpu-weight", 100, "CPU `WEIGHT` of each test, 1 to 10000 (100 is an ordinary process; cpu.shares 1024 on v1)")
	fs.Env("cpu-weight", "YCI_CPU_WEIGHT")
}

func (o LimitsOptions) validate() error {
	if o.Mode != "cgroup" && o.Mode != "none" {
		return fmt.Errorf("-limits must be cgroup or none, not %q", o.Mode)
	}
	return nil
}

// open returns the limits to enforce. The service refuses to start
// without them unless -limits none; -local enforces what it can.
func (o LimitsOptions) open(local bool, jobs int, log *slog.Logger) (*limits.Limits, error) {
	if o.Mode == "none" {
		return limits.Unlimited()
	}
	l, err := limits.Open(limits.Config{Memory: o.Memory, Share: int64(jobs), Pids: o.Pids, CPUWeight: o.CPUWeight})
	if err != nil && local {
		log.Warn("tests run without memory, process or CPU limits", "err", err)
		return limits.Unlimited()
	}
	if err != nil {
		return nil, fmt.Errorf("%w (run the worker as root with writable cgroup v1 memory and pids, or with Delegate=yes on cgroup v2; or -limits none)", err)
	}
	return l, nil
}
