package deploy

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// distCommands are the binaries a release ships, by their installed names.
var distCommands = []string{"yci-receiver", "yci-worker", "yci-reconcile", "yci-queue"}

// TestDistInstallsWithoutGo runs `make dist` for this machine's platform
// into a temporary directory, unpacks the tarball as an operator would, and
// runs every binary's -version and -h with nothing but /usr/bin:/bin on
// PATH and no other environment: no Go toolchain, no module cache. The
// binaries must be static, print the stamped version, and be the ones the
// shipped units start.
func TestDistInstallsWithoutGo(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds every command for release; make test runs it")
	}
	const version = "v0.0.0-disttest"
	dist := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	platform := "linux/" + runtime.GOARCH
	build := exec.CommandContext(ctx, "make", "-C", "..", "dist", "DIST="+dist, "VERSION="+version, "PLATFORMS="+platform)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make dist: %v\n%s", err, out)
	}
	name := "yourci-" + version + "-linux-" + runtime.GOARCH
	root := filepath.Join(t.TempDir(), "opt")
	unpack(t, filepath.Join(dist, name+".tar.gz"), root)
	top := filepath.Join(root, name)

	for _, want := range []string{"README.md", "SECURITY.md", "deploy/README.md", "deploy/nginx/yourci.conf", "deploy/nats/single.conf", "deploy/cron/yourci"} {
		if _, err := os.Stat(filepath.Join(top, want)); err != nil {
			t.Errorf("the tarball lacks %s: %v", want, err)
		}
	}
	for _, unit := range unitFiles {
		if _, err := os.Stat(filepath.Join(top, "deploy/systemd", unit)); err != nil {
			t.Errorf("the tarball lacks unit %s: %v", unit, err)
		}
	}
	if tests, _ := filepath.Glob(filepath.Join(top, "deploy", "*_test.go")); len(tests) > 0 {
		t.Errorf("the tarball ships test files: %v", tests)
	}
	t.Run("units_start_shipped_binaries", func(t *testing.T) {
		for _, unit := range unitFiles {
			for _, start := range unitDirectives(t, "systemd/"+unit)["ExecStart"] {
				bin := filepath.Base(strings.Fields(start)[0])
				if !slices.Contains(distCommands, bin) {
					t.Errorf("%s starts %s, which the tarball does not ship (%v)", unit, bin, distCommands)
				}
			}
		}
	})
	for _, cmd := range distCommands {
		t.Run(cmd, func(t *testing.T) {
			bin := filepath.Join(top, "bin", cmd)
			checkStatic(t, bin)
			out, err := runBare(ctx, root, bin, "-version")
			if err != nil || !strings.HasPrefix(out, cmd+" "+version+" (go") {
				t.Errorf("%s -version: %v, output %q; want it to start %q", cmd, err, out, cmd+" "+version+" (go")
			}
			out, err = runBare(ctx, root, bin, "-h")
			if err != nil || !strings.Contains(out, "Usage:") || !strings.Contains(out, "-version") {
				t.Errorf("%s -h: %v; want exit 0 and a usage listing -version:\n%s", cmd, err, out)
			}
		})
	}
}

// runBare runs bin with args in dir, with PATH=/usr/bin:/bin as its whole
// environment, and returns its combined output.
func runBare(ctx context.Context, dir, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// checkStatic fails unless path is an ELF executable with no program
// interpreter, i.e. one that needs no dynamic loader or libc.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (it has a program interpreter)", filepath.Base(path))
		}
	}
}

// unpack extracts a .tar.gz into dir, refusing entries that would land
// outside it.
func unpack(t *testing.T, tarball, dir string) {
	t.Helper()
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", tarball, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("reading %s: %v", tarball, err)
		}
		target := filepath.Join(dir, h.Name)
		if !strings.HasPrefix(target, dir+string(filepath.Separator)) {
			t.Fatalf("%s: entry %q leaves the directory", tarball, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			err = writeEntry(target, tr, h.FileInfo().Mode().Perm())
		default:
			t.Fatalf("%s: entry %q has unexpected type %c", tarball, h.Name, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writeEntry(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
