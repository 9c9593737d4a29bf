package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/envflag"
	"github.com/yourci/yourci/pkg/limits"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/sandbox"
)

// SandboxOptions say how tests and .yci.py evaluations are confined.
type SandboxOptions struct {
	// Backend is "bwrap" or "none"; "" means bwrap for the service and
	// none for -local.
	Backend string
	// Network is "shared" or "none".
	Network string
	// ReadOnly and Hide are comma-separated absolute paths: more host
	// paths a test may read, and paths of the system it must not.
	ReadOnly string
	Hide     string
	// TmpSize caps each of a sandboxed command's /tmp and HOME, in bytes;
	// zero leaves the kernel's default (half the memory each).
	TmpSize int64

	// bwrap replaces bubblewrap from PATH, for tests.
	bwrap string
}

func (o *SandboxOptions) addFlags(fs *envflag.Set) {
	fs.StringVar(&o.Backend, "sandbox", "", "how tests and .yci.py run: `bwrap` (bubblewrap; the service's default) or none (as the worker's user; -local's default)")
	fs.Env("sandbox", "YCI_SANDBOX")
	fs.StringVar(&o.Network, "test-network", "shared", "network of sandboxed tests: `shared` with the host, or none (loopback only)")
	fs.Env("test-network", "YCI_TEST_NETWORK")
	fs.StringVar(&o.ReadOnly, "sandbox-ro-bind", "", "comma-separated `PATHS` a sandboxed test may also read (toolchains outside /usr and /opt)")
	fs.Env("sandbox-ro-bind", "YCI_SANDBOX_RO_BIND")
	fs.StringVar(&o.Hide, "sandbox-hide", strings.Join(sandbox.DefaultHide, ","), "comma-separated system `PATHS` a sandboxed test sees empty")
	fs.Env("sandbox-hide", "YCI_SANDBOX_HIDE")
	// 1 GiB each: a Go test binary's link, pip's unpacked wheels and a
	// browser profile fit, and since tmpfs lives in memory the worst case
	// stays at 2 GiB per running test (-jobs of them at once).
	fs.Int64Var(&o.TmpSize, "sandbox-tmp-size", DefaultTmpSize, "`BYTES` each of a sandboxed test's /tmp and HOME may hold (tmpfs, in memory); 0 means half the memory")
	fs.Env("sandbox-tmp-size", "YCI_SANDBOX_TMP_SIZE")
}

// DefaultTmpSize is -sandbox-tmp-size's default, 1 GiB.
const DefaultTmpSize = 1 << 30

// cacheWait bounds how long an attempt waits for a cleanup that is
// removing its repository's cache.
const cacheWait = 10 * time.Minute

// validate reports every problem at once.
func (o SandboxOptions) validate() error {
	var errs []error
	switch o.Backend {
	case "", "bwrap", "none":
	default:
		errs = append(errs, fmt.Errorf("-sandbox must be bwrap or none, not %q", o.Backend))
	}
	if o.TmpSize < 0 {
		errs = append(errs, fmt.Errorf("-sandbox-tmp-size %d is negative", o.TmpSize))
	}
	if _, err := sandbox.ParseNetwork(o.Network); err != nil {
		errs = append(errs, fmt.Errorf("-test-network: %w", err))
	}
	for _, list := range []struct{ flag, value string }{{"-sandbox-ro-bind", o.ReadOnly}, {"-sandbox-hide", o.Hide}} {
		for _, p := range splitPaths(list.value) {
			if !filepath.IsAbs(p) {
				errs = append(errs, fmt.Errorf("%s: %q is not an absolute path", list.flag, p))
			}
		}
	}
	return errors.Join(errs...)
}

// backend is the sandbox backend in use: the explicit one, else bwrap for
// the service and none for -local.
func (o SandboxOptions) backend(local bool) string {
	switch {
	case o.Backend != "":
		return o.Backend
	case local:
		return "none"
	}
	return "bwrap"
}

// sharesFunc says what a command working in a directory shares with the
// other commands of its repository (sandbox.Options.SharesOf).
type sharesFunc = func(dir string) (sandbox.Shares, bool, error)

// open returns the working sandbox, or nil when the backend is none.
// sharesOf, when not nil, gives the tests of a repository their cache and
// the objects their checkouts borrow; hide are more paths to hide (the
// workspace, should it lie below a system directory, and secrets).
func (o SandboxOptions) open(ctx context.Context, local bool, sharesOf sharesFunc, hide ...string) (*sandbox.Bwrap, error) {
	if o.backend(local) == "none" {
		return nil, nil
	}
	network, err := sandbox.ParseNetwork(o.Network)
	if err != nil {
		return nil, err
	}
	opts := sandbox.Options{Bwrap: o.bwrap, Network: network, ReadOnly: splitPaths(o.ReadOnly), Hide: splitPaths(o.Hide), TmpSize: o.TmpSize, SharesOf: sharesOf}
	for _, s := range hide {
		if s != "" {
			abs, err := filepath.Abs(s)
			if err != nil {
				return nil, fmt.Errorf("hiding %s from tests: %w", s, err)
			}
			opts.Hide = append(opts.Hide, abs)
		}
	}
	box, err := sandbox.New(opts)
	if err != nil {
		return nil, err
	}
	if err := box.Probe(ctx); err != nil {
		return nil, err
	}
	return box, nil
}

// shareSource is what repositoryShares needs of the workspace: which
// repository a directory belongs to, where its mirror is (both
// artifacts.Layout) and its cache (artifacts.Caches).
type shareSource interface {
	RepoOf(path string) (owner, repo string, ok bool)
	MirrorDir(owner, repo string) (string, error)
	UseCache(ctx context.Context, owner, repo string) (dir string, release func(), err error)
}

// workspaceShares gives the service's tests their repository's shares.
func workspaceShares(ws shareSource) sharesFunc {
	return func(dir string) (sandbox.Shares, bool, error) { return repositoryShares(ws, dir) }
}

// repositoryShares are the cache of the repository dir belongs to and the
// objects directory of its mirror, which checkouts borrow through git's
// alternates. Only objects are shared, read-only: they are addressed by
// their content, so nothing a test reads there runs, and the mirror's
// config, hooks and refs stay out of sight. The cache is held in use
// (artifacts.Caches.UseCache) until the command is done with it.
func repositoryShares(ws shareSource, dir string) (sandbox.Shares, bool, error) {
	owner, repo, ok := ws.RepoOf(dir)
	if !ok {
		return sandbox.Shares{}, false, nil
	}
	mirror, err := ws.MirrorDir(owner, repo)
	if err != nil {
		return sandbox.Shares{}, false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cacheWait)
	defer cancel()
	cache, release, err := ws.UseCache(ctx, owner, repo)
	if err != nil {
		return sandbox.Shares{}, false, err
	}
	shares := sandbox.Shares{Cache: cache, Release: release}
	objects := filepath.Join(mirror, "objects")
	if fi, err := os.Stat(objects); err == nil && fi.IsDir() {
		shares.Objects = []string{objects}
	}
	return shares, true, nil
}

// confine sets box and lim on the evaluator and the runner, and makes the
// evaluator use a python3 visible inside the sandbox: PATH's system
// directories only, since a version manager's shim under /root or /home
// is not there. A nil box leaves them unconfined with python; lim always
// applies (evaluations get the tests' limits: a .yci.py that needs more
// than a test may use is broken anyway).
func confine(ctx context.Context, box *sandbox.Bwrap, lim *limits.Limits, python string, e *pipeline.Evaluator, r *pipeline.Runner) error {
	e.Python = python
	sb := &sandbox.Limited{Limits: lim}
	if box != nil {
		inside, err := box.LookPath("python3")
		if err != nil {
			return fmt.Errorf("finding python3 for the sandbox: %w", err)
		}
		if e.Python, err = pipeline.ResolvePython(ctx, inside); err != nil {
			return err
		}
		sb.Box = box
	}
	e.Sandbox, r.Sandbox = sb, sb
	return nil
}

func splitPaths(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
