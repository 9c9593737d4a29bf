// Package sandbox confines the commands a worker runs for code it does not
// trust (test attempts, .yci.py evaluations) with bubblewrap: the system
// read-only, the command's own working copy read-write, a fresh HOME and
// /tmp that vanish with it, its own PID, IPC, UTS and (optionally) network
// namespaces, no capabilities, and nothing else of the host.
//
// Inside, a command sees:
//
//	/usr /bin /sbin /lib* /etc /opt   the host's, read-only (symlinks kept as
//	                                  symlinks), minus the Hide paths
//	/proc /dev                        its own: only its own processes
//	/tmp, HOME=/home/yci              empty tmpfs, private to the command
//	its writable directories          read-write, at their host paths
//	its read-only directories         read-only, at their host paths
//	its repository's cache            read-write, as XDG_CACHE_HOME, with
//	                                  GOCACHE, GOMODCACHE, PIP_CACHE_DIR and
//	                                  npm_config_cache inside it
//
// The workspace, /root, /home, /var, /srv, /run and the host's /tmp are not
// there at all. PATH keeps only the host's entries that are visible inside,
// so a version manager's shims in /root or /home drop out and python3, bash
// and go resolve to the system's (/usr/bin/python3, /usr/local/go/bin/go).
package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Network says whether a confined command shares the host's network.
type Network int

const (
	// Shared keeps the host's network: tests may download modules.
	Shared Network = iota
	// None gives the command a network namespace of its own with only a
	// loopback interface.
	None
)

// ParseNetwork reads "shared" or "none".
func ParseNetwork(s string) (Network, error) {
	switch s {
	case "shared":
		return Shared, nil
	case "none":
		return None, nil
	}
	return 0, fmt.Errorf("test network must be shared or none, not %q", s)
}

// Home is HOME inside the sandbox: an empty tmpfs for every command.
const Home = "/home/yci"

// DefaultSystem are the host directories a confined command may read. Each
// that is a symlink on the host (/bin -> usr/bin on merged-/usr systems) is
// recreated as the same symlink; each that is missing is skipped.
var DefaultSystem = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// DefaultHide are the paths of the system directories that hold a worker's
// secrets on a typical install: YourCI's own configuration (env file, App
// key) and the host's password hashes and ssh host keys, readable to a test
// when the worker runs as root.
var DefaultHide = []string{"/etc/yourci", "/etc/shadow", "/etc/gshadow", "/etc/ssh"}

// Shares are what the commands working in one repository's directories
// share across attempts and builds.
type Shares struct {
	// Cache is bound read-write as the command's XDG_CACHE_HOME; "" means
	// none: caches then live in HOME and vanish with the command. A
	// command given no writable directory (the evaluation of .yci.py) gets
	// none either: it writes nothing on the host.
	Cache string
	// Objects are bound read-only: the mirror's git objects that checkouts
	// borrow through objects/info/alternates.
	Objects []string
	// Release, when set, is called once the command is done with the
	// shares: after it was waited for, or when it could not start.
	Release func()
}

// Options configure a Bwrap.
type Options struct {
	// Bwrap is the bubblewrap binary; "" means "bwrap" from PATH.
	Bwrap string
	// Network is the confined commands' network.
	Network Network
	// System are the host directories bound read-only; nil means
	// DefaultSystem.
	System []string
	// ReadOnly are more host paths bound read-only at their own path, such
	// as a toolchain under /srv; missing ones are an error at New.
	ReadOnly []string
	// Hide are paths made empty inside: a directory becomes an empty
	// tmpfs, read-only but for the command's own binds below it, a file
	// an empty file. Use it for secrets that lie in a system
	// directory (DefaultHide) and for the workspace or the worker's files
	// when they lie below one (/opt/yourci).
	Hide []string
	// SharesOf, when set, says what a command working in dir shares with
	// other commands of its repository; ok false means dir belongs to no
	// repository. An error fails the command's confinement.
	SharesOf func(dir string) (s Shares, ok bool, err error)
	// TmpSize caps each of the command's /tmp and HOME, in bytes: writing
	// past it fails inside with ENOSPC. Both are tmpfs, whose pages count
	// against the box's memory (and swap). Zero means the kernel's default
	// for tmpfs, half the box's memory each.
	TmpSize int64
}

// Bwrap confines commands with bubblewrap. It is safe for concurrent use
// and keeps no state between commands.
type Bwrap struct {
	bwrap, env string
	opts       Options
	// prefix is the fixed start of every command line, computed once: env
	// ignoring the signals, bwrap, and the system, the operator's read-only
	// paths, /proc, /dev, HOME, /tmp and the hidden paths.
	prefix []string
	// suffix starts the part after the command's own binds up to its
	// working directory; inner ends the line before the command.
	suffix, inner []string
	// visible are the host directories a command can see, for PATH.
	visible []string
	// hidden are the Hide directories, each an empty tmpfs inside, made
	// read-only once the command's own directories are bound below them.
	hidden []string
}

// New checks the options and the binaries bwrap and env (coreutils 8.31 or
// later, for --ignore-signal); it does not run them (see Probe).
func New(o Options) (*Bwrap, error) {
	bwrap := o.Bwrap
	if bwrap == "" {
		bwrap = "bwrap"
	}
	bwrapPath, err := exec.LookPath(bwrap)
	if err != nil {
		return nil, fmt.Errorf("finding bubblewrap: %w (install the bubblewrap package, or run with -sandbox none)", err)
	}
	envPath, err := exec.LookPath("env")
	if err != nil {
		return nil, fmt.Errorf("finding env: %w", err)
	}
	if o.System == nil {
		o.System = DefaultSystem
	}
	if o.TmpSize < 0 {
		return nil, fmt.Errorf("sandbox tmpfs size %d is negative", o.TmpSize)
	}
	b := &Bwrap{bwrap: bwrapPath, env: envPath, opts: o}
	if err := b.fixedBinds(); err != nil {
		return nil, err
	}
	b.suffix = []string{"--remount-ro", "/", "--chdir"}
	b.inner = append([]string{"--", envPath}, ignoreArgs("--default-signal")...)
	return b, nil
}

// fixedBinds lays out what every command sees.
func (b *Bwrap) fixedBinds() error {
	args := append([]string{b.env}, ignoreArgs("--ignore-signal")...)
	args = append(args, b.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL", "--die-with-parent")
	if b.opts.Network == Shared {
		args = append(args, "--share-net")
	}
	// The tmpfs first, so that binds below /tmp stay visible.
	args = append(args, "--proc", "/proc", "--dev", "/dev")
	for _, dir := range []string{"/tmp", Home} {
		if b.opts.TmpSize > 0 {
			args = append(args, "--size", strconv.FormatInt(b.opts.TmpSize, 10))
		}
		args = append(args, "--tmpfs", dir)
	}
	b.visible = append(b.visible, "/tmp", Home)
	for _, dir := range b.opts.System {
		dir = filepath.Clean(dir)
		fi, err := os.Lstat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue
		case err != nil:
			return fmt.Errorf("sandbox system directory: %w", err)
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(dir)
			if err != nil {
				return fmt.Errorf("sandbox system directory: %w", err)
			}
			args = append(args, "--symlink", target, dir)
			b.visible = append(b.visible, dir)
		default:
			args = append(args, "--ro-bind", dir, dir)
			b.visible = append(b.visible, dir)
		}
	}
	for _, p := range b.opts.ReadOnly {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("sandbox read-only path %q is not absolute", p)
		}
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("sandbox read-only path: %w", err)
		}
		p = filepath.Clean(p)
		args = append(args, "--ro-bind", p, p)
		b.visible = append(b.visible, p)
	}
	args = append(args, resolvConf(b.visible)...)
	for _, p := range b.opts.Hide {
		hide, err := b.hide(p)
		if err != nil {
			return err
		}
		if len(hide) > 0 && hide[0] == "--tmpfs" {
			b.hidden = append(b.hidden, filepath.Clean(p))
		}
		args = append(args, hide...)
	}
	b.prefix = args
	return nil
}

// hide returns the arguments that empty p inside, if it is visible there.
func (b *Bwrap) hide(p string) ([]string, error) {
	if !filepath.IsAbs(p) {
		return nil, fmt.Errorf("sandbox hidden path %q is not absolute", p)
	}
	p = filepath.Clean(p)
	if !under(b.visible, p) {
		return nil, nil
	}
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("sandbox hidden path: %w", err)
	case fi.IsDir():
		return []string{"--tmpfs", p}, nil
	}
	return []string{"--ro-bind", os.DevNull, p}, nil
}

// resolvConf binds the file /etc/resolv.conf points to when that lies
// outside the visible directories, as systemd-resolved's stub in /run does,
// so that name resolution works on a shared network.
func resolvConf(visible []string) []string {
	const name = "/etc/resolv.conf"
	if !under(visible, name) {
		return nil
	}
	target, err := filepath.EvalSymlinks(name)
	if err != nil || under(visible, target) {
		return nil
	}
	return []string{"--ro-bind", target, target}
}

// ignored are the signals the runner sends to a whole process group that
// bwrap itself must survive, so that the command gets its grace period
// (SIGTERM) or dumps its stacks (SIGUSR1, the evaluator's) before bwrap
// goes and --die-with-parent kills everything in the sandbox.
var ignored = []string{"TERM", "USR1"}

// Confine rewrites cmd, an unstarted command with an absolute Path, to run
// in the sandbox with cmd.Dir as its working directory. writable are the
// only host directories it may write (cmd.Dir is not implied: pass it when
// the command may write there); readOnly are more directories it may read.
// Both are bound at their own paths and must exist. The shares of the
// repository cmd.Dir belongs to (Options.SharesOf) are added, its cache
// only when writable is not empty.
//
// The caller must call done exactly once: after cmd.Wait returned, or when
// cmd could not be started. done releases the shares and returns an error
// wrapping ErrSetup when the command never ran, because bubblewrap failed
// to build the sandbox (a bind source gone since Confine, a kernel
// refusing a namespace) or to start it (not found inside); its own message
// is then on cmd's stderr. A nil error means the command ran, whatever its
// exit status; a run ended by a signal to the group may report either.
//
// The rewritten command is "env" ignoring SIGTERM and SIGUSR1, which runs
// bwrap, which runs "env" restoring them, which runs the command: sending
// SIGTERM to the process group reaches the command while bwrap waits, and
// SIGKILL to the group (or the death of the worker) ends bwrap and with
// it every process of the sandbox's PID namespace. The command is started
// in a new session (setsid) and so a process group of its own, without a
// controlling terminal.
func (b *Bwrap) Confine(cmd *exec.Cmd, writable, readOnly []string) (done func() error, err error) {
	c, err := b.confine(cmd, writable, readOnly, nil)
	if err != nil {
		return nil, err
	}
	return c.done, nil
}

// confined is a command rewritten by confine.
type confined struct {
	done func() error
}

// confine is Confine, with more bubblewrap arguments (the held command's
// descriptors) placed before the command's own binds.
func (b *Bwrap) confine(cmd *exec.Cmd, writable, readOnly []string, hold *hold) (*confined, error) {
	if cmd.Process != nil {
		return nil, errors.New("confining a command: already started")
	}
	if cmd.Err != nil {
		return nil, fmt.Errorf("confining a command: %w", cmd.Err)
	}
	if !filepath.IsAbs(cmd.Path) {
		return nil, fmt.Errorf("confining %s: not an absolute path", cmd.Path)
	}
	dir, err := filepath.Abs(cmd.Dir)
	if err != nil {
		return nil, fmt.Errorf("confining %s: %w", cmd.Path, err)
	}
	shares, err := b.shares(dir)
	if err != nil {
		return nil, err
	}
	if len(writable) == 0 {
		shares.Cache = "" // a command that may write nothing writes no cache either
	}
	release := func() {
		if shares.Release != nil {
			shares.Release()
		}
	}
	status, err := newStatus()
	if err != nil {
		release()
		return nil, fmt.Errorf("confining %s: %w", cmd.Path, err)
	}
	statusFD := 3 + len(cmd.ExtraFiles)
	var more []string
	if hold != nil {
		more = hold.args(statusFD + 1)
	}
	args, visible := b.commandLine(cmd, dir, shares, writable, readOnly, statusFD, more)
	if !under(visible, cmd.Path) {
		status.close()
		release()
		return nil, fmt.Errorf("confining a command: %s is not visible inside the sandbox; use a system interpreter or -sandbox-ro-bind", cmd.Path)
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = confinedEnv(env, visible, shares.Cache)
	cmd.Path, cmd.Args = b.env, args
	cmd.ExtraFiles = append(cmd.ExtraFiles, status.w)
	if hold != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, hold.childEnds()...)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setpgid = true, false
	return &confined{done: func() error {
		defer release()
		return status.ran()
	}}, nil
}

// commandLine is the whole command line of cmd, confined, with bubblewrap's
// status written to statusFD and more arguments for bubblewrap, and the
// directories visible inside.
func (b *Bwrap) commandLine(cmd *exec.Cmd, dir string, shares Shares, writable, readOnly []string, statusFD int, more []string) (args, visible []string) {
	args = make([]string, 0, len(b.prefix)+len(more)+3*(len(shares.Objects)+len(readOnly)+len(writable)+1)+len(b.suffix)+len(b.inner)+len(cmd.Args)+3)
	args = append(args, b.prefix...)
	args = append(args, "--json-status-fd", strconv.Itoa(statusFD))
	args = append(args, more...)
	visible = slices.Clone(b.visible)
	for _, p := range append(slices.Clone(shares.Objects), readOnly...) {
		p = filepath.Clean(p)
		args = append(args, "--ro-bind", p, p)
		visible = append(visible, p)
	}
	if shares.Cache != "" {
		writable = append([]string{shares.Cache}, writable...)
	}
	for _, p := range writable {
		p = filepath.Clean(p)
		args = append(args, "--bind", p, p)
		visible = append(visible, p)
	}
	args = append(args, b.readOnlyHidden(visible[len(b.visible):])...)
	args = append(append(args, b.suffix...), dir)
	args = append(append(args, b.inner...), cmd.Path)
	return append(args, cmd.Args[1:]...), visible
}

// readOnlyHidden returns the arguments that make each hidden directory's
// tmpfs read-only, after the command's own binds (bound) made their mount
// points in it: like the rest of the system, a hidden directory is no
// place to write, and its tmpfs would hold whatever was written there
// beyond TmpSize, in memory. A hidden directory at or below one of bound
// is left alone: that bind covers its tmpfs.
func (b *Bwrap) readOnlyHidden(bound []string) []string {
	var args []string
	for _, p := range b.hidden {
		if !under(bound, p) {
			args = append(args, "--remount-ro", p)
		}
	}
	return args
}

func (b *Bwrap) shares(dir string) (Shares, error) {
	if b.opts.SharesOf == nil {
		return Shares{}, nil
	}
	s, ok, err := b.opts.SharesOf(dir)
	if err != nil {
		return Shares{}, fmt.Errorf("finding the repository shares of %s: %w", dir, err)
	}
	if !ok {
		return Shares{}, nil
	}
	return s, nil
}

func ignoreArgs(flag string) []string {
	out := make([]string, len(ignored))
	for i, sig := range ignored {
		out[i] = flag + "=" + sig
	}
	return out
}

// LookPath finds name in the directories of PATH that are visible inside
// the sandbox, as the confined command's PATH will.
func (b *Bwrap) LookPath(name string) (string, error) {
	for _, dir := range visiblePath(os.Getenv("PATH"), b.visible) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("finding %s: not in a PATH directory visible inside the sandbox (%s)", name, strings.Join(b.visible, " "))
}

// under reports whether p is one of dirs or lies below one.
func under(dirs []string, p string) bool {
	p = filepath.Clean(p)
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}
