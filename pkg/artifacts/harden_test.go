package artifacts

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// lab is one attack on the worker's git: a workspace whose mirror exists,
// a script that leaves a mark when anything runs it, a hooks directory
// full of it, and a scratch repository with a working tree.
type lab struct {
	w       *Workspace
	mirror  string
	script  string
	hooks   string
	marks   string
	scratch string
	home    string
}

// fired reports whether the planted script ran.
func (l *lab) fired(t *testing.T) bool {
	t.Helper()
	entries, err := os.ReadDir(l.marks)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries) > 0
}

func (l *lab) clearMarks(t *testing.T) {
	t.Helper()
	if err := os.RemoveAll(l.marks); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(l.marks, 0o755); err != nil {
		t.Fatal(err)
	}
}

// newLab makes a lab whose mirror is cloned from the origin's path (the
// cheapest way; the fetches under attack go over HTTP).
func newLab(t *testing.T, originDir, base string) *lab {
	t.Helper()
	dir := t.TempDir()
	l := &lab{
		w: openWorkspace(t), script: filepath.Join(dir, "planted.sh"), hooks: filepath.Join(dir, "hooks"),
		marks: filepath.Join(dir, "marks"), scratch: filepath.Join(dir, "scratch"), home: filepath.Join(dir, "home"),
	}
	mustWrite(t, l.script, "#!/bin/sh\ntouch "+shellQuote(l.marks)+"/\"$(basename \"$0\")-$$\"\n")
	if err := os.Chmod(l.script, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, hook := range []string{"reference-transaction", "post-checkout", "pre-auto-gc", "post-index-change"} {
		if err := os.MkdirAll(l.hooks, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(l.script, filepath.Join(l.hooks, hook)); err != nil {
			t.Fatal(err)
		}
	}
	l.clearMarks(t)
	if err := os.Mkdir(l.home, 0o755); err != nil {
		t.Fatal(err)
	}
	testGit(t, "", "init", "--quiet", "--template=", l.scratch)
	testGit(t, "", "-C", l.scratch, "commit", "--quiet", "--allow-empty", "-m", "scratch")
	if err := l.w.UpdateMirror(testContext(t), "o", "r", originDir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	var err error
	if l.mirror, err = l.w.MirrorDir("o", "r"); err != nil {
		t.Fatal(err)
	}
	if !l.w.HasCommit(testContext(t), "o", "r", base) {
		t.Fatal("mirror lacks the base commit")
	}
	return l
}

func shellQuote(s string) string { return "'" + filepath.ToSlash(s) + "'" }

// plainGit runs git as a careless CI would: with the process's whole
// environment and every config file. Its failure is of no interest; only
// whether the planted code ran.
func plainGit(dir string, args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	_ = cmd.Run() // only its side effects matter
}

// TestWorkerGitRunsNothingPlanted plants, one at a time, what a test
// running as the worker's user could leave behind: config files read by
// git, variables in the worker's environment, hooks and config in the
// mirror. Each plant is first shown to work against plain git (the
// control), then the worker's fetch, HasCommit and checkout of a new
// commit must run none of it, reach the real server with the real
// credentials, and check out the right commit.
//
// It sets the process environment, so it does not run in parallel.
func TestWorkerGitRunsNothingPlanted(t *testing.T) {
	o := newOrigin(t)
	base := o.commit("", "base", file{name: "README", content: "base\n"})
	o.setRef("refs/heads/main", base)
	const user, token = "x-access-token", "ghs_PlantedConfigCannotSeeMe"
	srv, refused := newGitServer(t, filepath.Dir(o.dir), user, token)
	cloneURL := srv.URL + "/" + filepath.Base(o.dir)
	auth := GitAuth{Password: token}
	var decoyHits atomic.Int64
	decoy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		decoyHits.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(decoy.Close)
	insteadOf := "[url \"" + decoy.URL + "/\"]\n\tinsteadOf = " + srv.URL + "/\n"

	updateRefInMirror := func(l *lab) { plainGit(l.mirror, "--git-dir="+l.mirror, "update-ref", "refs/control", base) }
	tests := []struct {
		name    string
		plant   func(t *testing.T, l *lab)
		control func(l *lab)
	}{
		{
			name: "global_gitconfig_hooksPath",
			plant: func(t *testing.T, l *lab) {
				mustWrite(t, filepath.Join(l.home, ".gitconfig"), "[core]\n\thooksPath = "+l.hooks+"\n")
				t.Setenv("HOME", l.home)
			},
			control: updateRefInMirror,
		},
		{
			name: "global_gitconfig_fsmonitor",
			plant: func(t *testing.T, l *lab) {
				mustWrite(t, filepath.Join(l.home, ".gitconfig"), "[core]\n\tfsmonitor = "+l.script+"\n")
				t.Setenv("HOME", l.home)
			},
			control: func(l *lab) { plainGit(l.scratch, "status") },
		},
		{
			name: "global_gitconfig_insteadOf",
			plant: func(t *testing.T, l *lab) {
				mustWrite(t, filepath.Join(l.home, ".config", "git", "config"), insteadOf)
				t.Setenv("HOME", l.home)
			},
			control: func(l *lab) { plainGit(l.scratch, "ls-remote", cloneURL) },
		},
		{
			name: "xdg_config_hooksPath",
			plant: func(t *testing.T, l *lab) {
				mustWrite(t, filepath.Join(l.home, "xdg", "git", "config"), "[core]\n\thooksPath = "+l.hooks+"\n")
				t.Setenv("XDG_CONFIG_HOME", filepath.Join(l.home, "xdg"))
			},
			control: updateRefInMirror,
		},
		{
			name: "system_gitconfig_via_GIT_CONFIG_SYSTEM",
			plant: func(t *testing.T, l *lab) {
				system := filepath.Join(l.home, "gitconfig")
				mustWrite(t, system, "[core]\n\thooksPath = "+l.hooks+"\n\tfsmonitor = "+l.script+"\n")
				t.Setenv("GIT_CONFIG_SYSTEM", system)
			},
			control: updateRefInMirror,
		},
		{
			name:    "env_GIT_CONFIG_PARAMETERS",
			plant:   func(t *testing.T, l *lab) { t.Setenv("GIT_CONFIG_PARAMETERS", "'core.hookspath'='"+l.hooks+"'") },
			control: updateRefInMirror,
		},
		{
			name: "env_GIT_CONFIG_COUNT",
			plant: func(t *testing.T, l *lab) {
				t.Setenv("GIT_CONFIG_COUNT", "1")
				t.Setenv("GIT_CONFIG_KEY_0", "core.fsmonitor")
				t.Setenv("GIT_CONFIG_VALUE_0", l.script)
			},
			control: func(l *lab) { plainGit(l.scratch, "status") },
		},
		{
			name: "env_GIT_DIR",
			plant: func(t *testing.T, l *lab) {
				gitDir := filepath.Join(l.scratch, ".git")
				if err := os.Symlink(l.hooks, filepath.Join(gitDir, "hooks")); err != nil {
					t.Fatal(err)
				}
				t.Setenv("GIT_DIR", gitDir)
			},
			control: func(l *lab) { plainGit(l.home, "update-ref", "refs/control", "HEAD") },
		},
		{
			name:    "env_GIT_SSH_COMMAND",
			plant:   func(t *testing.T, l *lab) { t.Setenv("GIT_SSH_COMMAND", l.script) },
			control: func(l *lab) { plainGit(l.home, "ls-remote", "ssh://git@127.0.0.1:1/o/r.git") },
		},
		{
			name: "mirror_hooks",
			plant: func(t *testing.T, l *lab) {
				for _, hook := range []string{"reference-transaction", "post-checkout", "pre-auto-gc"} {
					mustWrite(t, filepath.Join(l.mirror, "hooks", hook), "#!/bin/sh\nexec "+l.script+"\n")
					if err := os.Chmod(filepath.Join(l.mirror, "hooks", hook), 0o755); err != nil {
						t.Fatal(err)
					}
				}
			},
			control: updateRefInMirror,
		},
		{
			name: "mirror_config_hooksPath",
			plant: func(t *testing.T, l *lab) {
				appendFile(t, filepath.Join(l.mirror, "config"), "[core]\n\thooksPath = "+l.hooks+"\n")
			},
			control: updateRefInMirror,
		},
		{
			name: "mirror_config_fsmonitor",
			plant: func(t *testing.T, l *lab) {
				appendFile(t, filepath.Join(l.mirror, "config"), "[core]\n\tfsmonitor = "+l.script+"\n")
			},
			control: func(l *lab) { plainGit(l.scratch, "--git-dir="+l.mirror, "--work-tree="+l.scratch, "status") },
		},
		{
			name:    "mirror_config_insteadOf",
			plant:   func(t *testing.T, l *lab) { appendFile(t, filepath.Join(l.mirror, "config"), insteadOf) },
			control: func(l *lab) { plainGit(l.mirror, "--git-dir="+l.mirror, "ls-remote", cloneURL) },
		},
		{
			name: "mirror_config_include",
			plant: func(t *testing.T, l *lab) {
				included := filepath.Join(l.home, "included")
				mustWrite(t, included, "[core]\n\thooksPath = "+l.hooks+"\n")
				appendFile(t, filepath.Join(l.mirror, "config"), "[include]\n\tpath = "+included+"\n")
			},
			control: updateRefInMirror,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GIT_CONFIG_NOSYSTEM", "") // plants must reach plain git
			os.Unsetenv("GIT_CONFIG_NOSYSTEM")
			l := newLab(t, o.dir, base)
			tt.plant(t, l)
			decoyHits.Store(0)
			tt.control(l)
			if !l.fired(t) && decoyHits.Load() == 0 {
				t.Fatal("control: the plant did nothing to plain git, so this case proves nothing")
			}
			l.clearMarks(t)
			decoyHits.Store(0)
			refusedBefore := refused.Load()

			ctx := testContext(t)
			head := o.commit(base, "pull "+tt.name, file{name: "README", content: tt.name + "\n"})
			o.setRef("refs/pull/"+strconv.Itoa(i+1)+"/head", head)
			if err := l.w.UpdateMirror(ctx, "o", "r", cloneURL, auth); err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if !l.w.HasCommit(ctx, "o", "r", head) {
				t.Error("mirror lacks the pushed commit after a fetch")
			}
			b := Build{Owner: "o", Repo: "r", Pull: i + 1, Number: 1}
			dest, err := l.w.SourceDir(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.w.Checkout(ctx, b, head, "main", dest); err != nil {
				t.Fatalf("checkout: %v", err)
			}
			if got := testGit(t, "", "--git-dir="+filepath.Join(dest, ".git"), "rev-parse", "HEAD"); got != head {
				t.Errorf("checkout HEAD = %s, want %s", got, head)
			}
			// An ssh fetch fails (nothing listens), but must not run a
			// command the environment named.
			if err := l.w.UpdateMirror(ctx, "o", "viassh", "ssh://git@127.0.0.1:1/o/r.git", auth); err == nil {
				t.Error("fetch over ssh from a closed port succeeded")
			}
			if l.fired(t) {
				t.Error("planted code ran during the worker's git")
			}
			if n := decoyHits.Load(); n != 0 {
				t.Errorf("the worker's fetch went to the decoy %d times", n)
			}
			if n := refused.Load() - refusedBefore; n != 0 {
				t.Errorf("the server refused the worker's credentials %d times", n)
			}
		})
	}
}

// TestWorkerGitIgnoresHooksInAnyRepository runs the worker's git in a
// repository with a hook that resetMirror does not remove (not a mirror),
// so only core.hooksPath=/dev/null stands between the hook and git.
func TestWorkerGitIgnoresHooksInAnyRepository(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	sha := o.commit("", "base", file{name: "a", content: "a"})
	marker := filepath.Join(t.TempDir(), "ran")
	hook := filepath.Join(o.dir, "hooks", "reference-transaction")
	mustWrite(t, hook, "#!/bin/sh\ntouch "+shellQuote(marker)+"\n")
	if err := os.Chmod(hook, 0o755); err != nil {
		t.Fatal(err)
	}
	w := openWorkspace(t)
	ctx := testContext(t)
	// The control: git with only a clean config runs the hook.
	testGit(t, "", "--git-dir="+o.dir, "update-ref", "refs/heads/control", sha)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("control: the hook did not run under plain git: %v", err)
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if _, err := w.git(ctx, GitAuth{}, "--git-dir="+o.dir, "update-ref", "refs/heads/worker", sha); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the hook ran under the worker's git (%v)", err)
	}
}

// TestResetMirrorUndoesPlants checks what resetMirror leaves of a mirror a
// test rewrote: its own config and HEAD, no hooks, alternates or commondir,
// and a mirror git still fetches into.
func TestResetMirrorUndoesPlants(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	sha := o.commit("", "base", file{name: "a", content: "a"})
	o.setRef("refs/heads/main", sha)
	w := openWorkspace(t)
	ctx := testContext(t)
	mirror := mirrored(ctx, t, w, o)
	initConfig, err := os.ReadFile(filepath.Join(mirror, "config"))
	if err != nil {
		t.Fatal(err)
	}
	if string(initConfig) != mirrorConfig {
		t.Errorf("git init wrote config\n%q\nbut mirrorConfig is\n%q", initConfig, mirrorConfig)
	}
	elsewhere := t.TempDir()
	mustWrite(t, filepath.Join(elsewhere, "config"), "[core]\n\tbare = true\n")
	if err := os.Remove(filepath.Join(mirror, "config")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "config"), filepath.Join(mirror, "config")); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(mirror, "hooks", "reference-transaction"), "#!/bin/sh\n")
	mustWrite(t, filepath.Join(mirror, "commondir"), elsewhere+"\n")
	mustWrite(t, filepath.Join(mirror, "objects", "info", "alternates"), elsewhere+"\n")
	mustWrite(t, filepath.Join(mirror, "HEAD"), "garbage\n")

	if err := resetMirror(mirror); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"config": mirrorConfig, "HEAD": mirrorHead} {
		info, err := os.Lstat(filepath.Join(mirror, name))
		if err != nil || !info.Mode().IsRegular() {
			t.Errorf("%s is not a regular file after reset: %v", name, err)
			continue
		}
		if got, err := os.ReadFile(filepath.Join(mirror, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range plantable {
		if _, err := os.Lstat(filepath.Join(mirror, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived the reset (%v)", name, err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(elsewhere, "config")); err != nil || string(got) != "[core]\n\tbare = true\n" {
		t.Errorf("the reset wrote through the config symlink: %q, %v", got, err)
	}
	if err := w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
		t.Errorf("fetch into a reset mirror: %v", err)
	}
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
