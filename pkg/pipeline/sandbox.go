package pipeline

import "os/exec"

// Sandbox confines the processes of test attempts and .yci.py evaluations,
// which run code nobody vetted. pkg/sandbox implements it with bubblewrap;
// a nil Sandbox runs them as the worker's user with the worker's view of
// the machine.
type Sandbox interface {
	// Confine rewrites the unstarted cmd (absolute Path, Dir set) to run
	// confined, writing only to the writable directories and reading,
	// besides the system, only the readOnly ones. The log's directory is
	// never among them: the runner writes the log from the output pipe.
	// The rewritten command must still end with its process group: the
	// runner signals the group of cmd's process, and SIGKILL to it must
	// leave nothing of the command running.
	//
	// The caller calls done once, after cmd.Wait returned or when cmd
	// could not start; it releases what Confine took and returns an error
	// when the command itself never ran because the sandbox could not be
	// set up: the worker's problem, not the test's.
	Confine(cmd *exec.Cmd, writable, readOnly []string) (done func() error, err error)
}

// Starter is a Sandbox that decides how the commands it confined are
// started: in a cgroup from their first instruction, held until their OOM
// score is raised. Start is called once per confined command, in place of
// cmd.Start, with the same contract: an error means cmd is not running.
type Starter interface {
	Start(cmd *exec.Cmd) error
}

// start starts cmd, confined by s (nil: unconfined).
func start(s Sandbox, cmd *exec.Cmd) error {
	if st, ok := s.(Starter); ok {
		return st.Start(cmd)
	}
	return cmd.Start()
}

// limitError is what a Sandbox's done returns (wrapped or joined) for a
// command that went past a kernel-enforced limit: its message is the
// reason for the log, and Errored says whether that makes the attempt an
// error (a process limit) rather than a failure (memory).
type limitError interface {
	error
	Errored() bool
}
