package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/pause"
)

// cronCommand returns the command of the cron/yourci entry whose output is
// tagged tag, with the replacements applied (pairs of old and new strings).
func cronCommand(t *testing.T, tag string, oldnew ...string) string {
	t.Helper()
	const name = "cron/yourci"
	for _, line := range strings.Split(readDeployFile(t, name), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 7 || strings.HasPrefix(fields[0], "#") || !strings.HasSuffix(line, "logger -t "+tag) {
			continue
		}
		// minute hour day month weekday user command...
		command := strings.TrimSpace(strings.SplitN(line, fields[5], 2)[1])
		return substitute(t, name, command, oldnew...)
	}
	t.Fatalf("%s has no entry logging as %s", name, tag)
	return ""
}

// runShell runs command with sh, as cron does, and returns its output. The
// pipeline's children are not waited for beyond a second after sh is killed.
func runShell(ctx context.Context, command string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.WaitDelay = time.Second
	return cmd.CombinedOutput()
}

// TestCronEntries runs the cron entries' commands with sh, as cron would,
// with a stand-in for reconcile that records how it was started and, for
// the sweep, runs until the test releases it.
func TestCronEntries(t *testing.T) {
	t.Parallel()
	dir, ws := t.TempDir(), t.TempDir()
	marks, release := filepath.Join(dir, "marks"), filepath.Join(dir, "release")
	stub := filepath.Join(dir, "reconcile")
	writeFile(t, stub, `#!/bin/sh
printf '%s|%s|%s\n' "$(pwd)" "$*" "$GITHUB_REPOSITORIES" >>`+marks+`
if [ -z "$*" ]; then
	while [ ! -e `+release+` ]; do sleep 0.02; done
fi
`)
	if err := os.Chmod(stub, 0o755); err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(dir, "env")
	writeFile(t, env, "GITHUB_REPOSITORIES=\"owner/a owner/b\"\nNATS_URL=nats://127.0.0.1:4222\n")
	replacements := []string{
		"/etc/yourci/env", env,
		"/usr/local/bin/yci-reconcile", stub,
		"/run/lock/", dir + "/",
		// The test need not run as root; what runuser does is its own.
		"runuser -u yourci -- ", "",
	}
	readMarks := func() []string {
		b, err := os.ReadFile(marks)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}

	t.Run("a_sweep_gives_up_while_the_previous_one_runs", func(t *testing.T) {
		command := cronCommand(t, "yourci-reconcile", append(replacements, "logger -t yourci-reconcile", "cat")...)
		first := startProcess(t, exec.Command("/bin/sh", "-c", command), os.Interrupt)
		t.Cleanup(func() { writeFile(t, release, "") })
		ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
		defer cancel()
		if pause.Poll(ctx, 10*time.Millisecond, func() bool { return len(readMarks()) > 0 }) != nil {
			t.Fatal("the first sweep never started")
		}

		if out, err := runShell(ctx, command); err != nil || ctx.Err() != nil {
			t.Fatalf("second sweep: %v (%v)\n%s", err, ctx.Err(), out)
		}
		if got := readMarks(); len(got) != 1 {
			t.Fatalf("sweeps started = %q, want only the first", got)
		}
		if got, want := strings.SplitN(readMarks()[0], "|", 2)[1], "|owner/a owner/b"; got != want {
			t.Errorf("sweep started with args|GITHUB_REPOSITORIES = %q, want %q", got, want)
		}

		writeFile(t, release, "")
		<-first.exited
		if first.err != nil {
			t.Errorf("first sweep: %v", first.err)
		}
	})
	t.Run("cleanup_runs_in_the_workspace_with_its_age_limit", func(t *testing.T) {
		command := cronCommand(t, "yourci-cleanup", append(replacements,
			"/srv/yourci/workspace", ws,
			"logger -t yourci-cleanup", "cat",
		)...)
		ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
		defer cancel()
		if out, err := runShell(ctx, command); err != nil {
			t.Fatalf("cleanup: %v\n%s", err, out)
		}
		want := ws + "|-cleanup-older-than 336h|owner/a owner/b"
		marks := readMarks()
		if len(marks) == 0 || marks[len(marks)-1] != want {
			t.Fatalf("cleanup started as %q, want %q", marks, want)
		}
	})
	t.Run("neither_runs_without_NATS_URL", func(t *testing.T) {
		noNATS := filepath.Join(t.TempDir(), "env")
		writeFile(t, noNATS, "GITHUB_REPOSITORIES=\"owner/a\"\n")
		for _, tag := range []string{"yourci-reconcile", "yourci-cleanup"} {
			oldnew := append([]string{"/etc/yourci/env", noNATS}, replacements[2:]...)
			if tag == "yourci-cleanup" {
				oldnew = append(oldnew, "/srv/yourci/workspace", ws)
			}
			command := cronCommand(t, tag, append(oldnew, "logger -t "+tag, "cat")...)
			before := len(readMarks())
			ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
			out, err := runShell(ctx, command)
			cancel()
			if err != nil || !strings.Contains(string(out), "NATS_URL is not set") {
				t.Errorf("%s without NATS_URL: %v, output %q; want the reason", tag, err, out)
			}
			if after := len(readMarks()); after != before {
				t.Errorf("%s started reconcile without NATS_URL", tag)
			}
		}
	})
}
