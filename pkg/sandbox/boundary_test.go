package sandbox_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/sandbox"
	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

// confined runs script with bash in dir inside box, dir writable, and
// returns its output and error.
func confined(t *testing.T, box *sandbox.Bwrap, dir, script string, readOnly ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "/bin/bash", "-euc", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOST_PID="+strconv.Itoa(os.Getpid()))
	done, err := box.Confine(cmd, []string{dir}, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ranErr := done(); ranErr != nil {
		t.Fatalf("the sandbox could not be set up: %v\n%s", ranErr, out.String())
	}
	return out.String(), err
}

func mustConfined(t *testing.T, box *sandbox.Bwrap, dir, script string, readOnly ...string) string {
	t.Helper()
	out, err := confined(t, box, dir, script, readOnly...)
	if err != nil {
		t.Fatalf("confined script failed: %v\n%s", err, out)
	}
	return out
}

func write(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSandboxBoundary runs scripts that try to cross the boundary; each
// exits non-zero (and says why) when it gets through.
func TestSandboxBoundary(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	// A stand-in system directory holding secrets the operator hides.
	sys := filepath.Join(root, "sys")
	write(t, filepath.Join(sys, "yourci", "env"), "GITHUB_ACCESS_TOKEN=ghp_secret\n")
	write(t, filepath.Join(sys, "shadow"), "root:$6$hash\n")
	write(t, filepath.Join(sys, "motd"), "welcome\n")
	box := sandboxtest.New(t, sandbox.Options{
		System: append(append([]string{}, sandbox.DefaultSystem...), sys),
		Hide:   []string{filepath.Join(sys, "yourci"), filepath.Join(sys, "shadow")},
	})
	ws := filepath.Join(root, "ws")
	work := filepath.Join(ws, "acme", "app", "pulls", "1", "1", "unit", "source")
	write(t, filepath.Join(work, "README"), "mine\n")
	write(t, filepath.Join(ws, "acme", "app", "pulls", "1", "1", "unit", "out.txt"), "log\n")
	write(t, filepath.Join(ws, "acme", "app", "source", "config"), "[remote]\n")
	write(t, filepath.Join(ws, "acme", "app", "pulls", "2", "1", "unit", "source", "x"), "other build\n")
	hostTmp, err := os.CreateTemp("", "yci-host-tmp-")
	if err != nil {
		t.Fatal(err)
	}
	hostTmp.Close()
	t.Cleanup(func() { os.Remove(hostTmp.Name()) })
	home, _ := os.UserHomeDir()

	tests := []struct{ name, script string }{
		{"sees_and_writes_its_own_copy", `grep -qx mine README; echo new > made; test -s made`},
		{"cannot_see_its_own_log_nor_other_builds", `
			for p in ../out.txt ` + ws + `/acme/app/source/config ` + ws + `/acme/app/pulls/2/1/unit/source/x; do
				if test -e "$p"; then echo "sees $p"; exit 1; fi; done
			ln -f README ../out.txt 2>/dev/null || true; echo x >> ../out.txt 2>/dev/null || true
			ln -f README /proc/self/cwd/../out.txt 2>/dev/null || true`},
		{"cannot_see_root_home_or_host_tmp", `
			if test -e ` + hostTmp.Name() + `; then echo "sees host tmp"; exit 1; fi
			for d in /root ` + home + ` /var /srv /run; do
				if test -n "$(ls -A $d 2>/dev/null)"; then echo "sees $d"; exit 1; fi; done`},
		{"hidden_paths_are_empty", `
			test -z "$(ls -A ` + sys + `/yourci)" || { echo "sees yourci dir"; exit 1; }
			test ! -s ` + sys + `/shadow || { echo "reads shadow"; exit 1; }
			grep -qx welcome ` + sys + `/motd`},
		{"sees_only_its_own_processes", `
			n=$(ls /proc | grep -c '^[0-9]*$')
			test "$n" -lt 10 || { echo "sees $n processes"; ls /proc; exit 1; }
			test ! -e /proc/$HOST_PID || { echo "sees the worker"; exit 1; }
			grep -q bwrap /proc/1/cmdline`},
		{"system_is_read_only_even_for_root", `
			if touch /usr/yci-planted 2>/dev/null; then echo "wrote /usr"; exit 1; fi
			if mount -o remount,rw,bind /usr 2>/dev/null; then echo "remounted /usr"; exit 1; fi
			if unshare -U true 2>/dev/null; then echo "made a user namespace"; exit 1; fi
			if touch /planted 2>/dev/null; then echo "wrote /"; exit 1; fi
			test "$(grep CapEff /proc/self/status | tr -d ' \t')" = CapEff:0000000000000000`},
		{"home_and_tmp_are_its_own", `
			test "$HOME" = /home/yci; test "$TMPDIR" = /tmp
			test -z "$(ls -A "$HOME")"; echo x > "$HOME/f"; echo y > /tmp/f
			git config --global user.name planted; mkdir -p ~/.config/git; echo "[core]" > ~/.config/git/config
			case ":$PATH:" in *:/root/*) echo "PATH keeps /root: $PATH"; exit 1;; esac`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustConfined(t, box, work, tt.script)
		})
	}
	if log, err := os.ReadFile(filepath.Join(ws, "acme", "app", "pulls", "1", "1", "unit", "out.txt")); err != nil || string(log) != "log\n" {
		t.Errorf("the test's log on the host is now %q, %v; want it untouched", log, err)
	}
	if _, err := os.Stat("/usr/yci-planted"); err == nil {
		t.Error("a confined script wrote /usr")
	}
	t.Run("home_and_tmp_are_gone_for_the_next_command", func(t *testing.T) {
		mustConfined(t, box, work, `test ! -e "$HOME/f"; test ! -e /tmp/f; test ! -e ~/.gitconfig; test -z "$(git config --global user.name || true)"`)
	})
}

func TestSandboxNetwork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		network  sandbox.Network
		onlyLoop bool
	}{{sandbox.None, true}, {sandbox.Shared, false}}
	for _, tt := range tests {
		t.Run(map[bool]string{true: "none_has_only_loopback", false: "shared_has_the_hosts"}[tt.onlyLoop], func(t *testing.T) {
			box := sandboxtest.New(t, sandbox.Options{Network: tt.network})
			out := mustConfined(t, box, t.TempDir(), `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' '`)
			if got := strings.TrimSpace(out); (got == "lo") != tt.onlyLoop {
				t.Errorf("interfaces inside = %q; want only lo: %v", got, tt.onlyLoop)
			}
		})
	}
}

// TestSandboxCacheIsPerRepository: a repository's cache persists across
// commands, and another repository's commands neither see it nor share it.
func TestSandboxCacheIsPerRepository(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	caches := map[string]string{"a": filepath.Join(root, "cache", "a"), "b": filepath.Join(root, "cache", "b")}
	for _, c := range caches {
		if err := os.MkdirAll(c, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	box := sandboxtest.New(t, sandbox.Options{SharesOf: func(dir string) (sandbox.Shares, bool, error) {
		repo := filepath.Base(filepath.Dir(dir))
		c, ok := caches[repo]
		return sandbox.Shares{Cache: c}, ok, nil
	}})
	dirOf := func(repo string) string {
		d := filepath.Join(root, repo, "source")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	mustConfined(t, box, dirOf("a"), `
		test "$XDG_CACHE_HOME" = `+caches["a"]+`
		test "$GOCACHE" = "$XDG_CACHE_HOME/go-build"; test "$GOMODCACHE" = "$XDG_CACHE_HOME/go-mod"
		test "$PIP_CACHE_DIR" = "$XDG_CACHE_HOME/pip"; test "$npm_config_cache" = "$XDG_CACHE_HOME/npm"
		mkdir -p "$GOMODCACHE"; echo a > "$GOMODCACHE/marker"`)
	mustConfined(t, box, dirOf("a"), `grep -qx a "$GOMODCACHE/marker"`)
	mustConfined(t, box, dirOf("b"), `
		test "$XDG_CACHE_HOME" = `+caches["b"]+`
		test ! -e "$GOMODCACHE/marker"; test ! -e `+caches["a"]+`/go-mod/marker`)
	if _, err := os.Stat(filepath.Join(caches["b"], "go-mod", "marker")); err == nil {
		t.Error("repository b's cache holds a's marker")
	}
}

// TestSandboxGitBorrowsMirrorObjects: a checkout borrowing the mirror's
// objects works inside when only the objects are bound, read-only.
func TestSandboxGitBorrowsMirrorObjects(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	mirror, work := filepath.Join(root, "source"), filepath.Join(root, "pulls", "1", "1", "t", "source")
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com",
			"GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	seed := filepath.Join(root, "seed")
	git("init", "-q", "-b", "main", seed)
	write(t, filepath.Join(seed, "f"), "content\n")
	git("-C", seed, "add", "f")
	git("-C", seed, "commit", "-qm", "first")
	git("clone", "-q", "--mirror", seed, mirror)
	git("clone", "-q", "--shared", "--no-checkout", mirror, work)
	git("-C", work, "checkout", "-q", "--detach", "main")
	objects := filepath.Join(mirror, "objects")
	box := sandboxtest.New(t, sandbox.Options{SharesOf: func(string) (sandbox.Shares, bool, error) {
		return sandbox.Shares{Objects: []string{objects}}, true, nil
	}})
	mustConfined(t, box, work, `
		test "$(git log --format=%s)" = first; git status --short >/dev/null
		test ! -e `+mirror+`/config || { echo "sees the mirror's config"; exit 1; }
		if touch `+objects+`/planted 2>/dev/null; then echo "wrote the mirror's objects"; exit 1; fi`)
}

// TestSandboxHiddenWorkspaceIsReadOnly: a workspace below a system
// directory (/opt/yourci, or /tmp in tests) is hidden as an empty tmpfs;
// a command can write its own working copy, bound below it, but not the
// tmpfs itself, whose writes would vanish with the command yet fill
// memory past TmpSize meanwhile. A hidden directory below the working
// copy is covered by its bind and does not stop the command.
func TestSandboxHiddenWorkspaceIsReadOnly(t *testing.T) {
	t.Parallel()
	sys := filepath.Join(t.TempDir(), "opt")
	ws := filepath.Join(sys, "yourci")
	work := filepath.Join(ws, "acme", "app", "pulls", "1", "1", "unit", "source")
	write(t, filepath.Join(work, "README"), "mine\n")
	write(t, filepath.Join(work, "inner", "f"), "inner\n")
	write(t, filepath.Join(ws, "acme", "app", "pulls", "1", "1", ".spare-source", "f"), "spare\n")
	box := sandboxtest.New(t, sandbox.Options{
		System: append(append([]string{}, sandbox.DefaultSystem...), sys),
		Hide:   []string{ws, filepath.Join(work, "inner")},
	})
	spare := filepath.Join(ws, "acme", "app", "pulls", "1", "1", ".spare-source")
	mustConfined(t, box, work, `
		grep -qx mine README; echo new > made; grep -qx inner inner/f
		if test -e `+spare+`; then echo "sees the spare"; exit 1; fi
		for p in `+ws+`/planted ../../planted `+spare+`/f; do
			if mkdir -p "$(dirname "$p")" 2>/dev/null && echo x > "$p" 2>/dev/null; then echo "wrote $p"; exit 1; fi
		done`)
	if got, err := os.ReadFile(filepath.Join(work, "made")); err != nil || string(got) != "new\n" {
		t.Errorf("the working copy's new file on the host: %q, %v", got, err)
	}
}
