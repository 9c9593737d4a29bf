package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/pause"
)

// attemptIn returns the first attempt of a test named "unit" running cmd in
// a fresh source directory, with its log in a sibling directory.
func attemptIn(t *testing.T, cmd string) Attempt {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "source")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	return Attempt{
		Test:    Test{Name: "unit", Command: cmd},
		Number:  1,
		Dir:     src,
		LogPath: filepath.Join(dir, "unit", "out.txt"),
	}
}

// runOK runs a and fails the test on an infrastructure error.
func runOK(t *testing.T, r *Runner, a Attempt) (Result, string) {
	t.Helper()
	res, err := r.Run(t.Context(), a)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res, readLog(t, a.LogPath)
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// outputOf returns what the test wrote to a one-attempt log: the text
// between the header's last line and the first runner line after it.
func outputOf(t *testing.T, log string) string {
	t.Helper()
	_, rest, ok := strings.Cut(log, "\n"+LogPrefix+"timeout: ")
	if !ok {
		t.Fatalf("no header in log:\n%s", log)
	}
	_, rest, _ = strings.Cut(rest, "\n")
	end := strings.Index(rest, "\n"+LogPrefix)
	if strings.HasPrefix(rest, LogPrefix) {
		return ""
	}
	if end < 0 {
		t.Fatalf("no footer in log:\n%s", log)
	}
	return rest[:end+1]
}

// waitForFile waits until path exists, which the test's command creates
// to say it got somewhere; the deadline only stops a broken test hanging.
// It reports a timeout with t.Errorf and returns false, so that it may be
// called from any goroutine, which then goes on to release the test.
func waitForFile(t *testing.T, path string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if pause.Poll(ctx, 5*time.Millisecond, func() bool { _, err := os.Stat(path); return err == nil }) != nil {
		t.Errorf("%s never appeared", path)
		return false
	}
	return true
}

func TestRunnerExitCodesBecomeOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		command string
		want    Result
	}{
		{"exit_0_passes", "true", Result{Outcome: Passed, ExitCode: 0, Reason: "exit status 0"}},
		{"exit_3_fails", "exit 3", Result{Outcome: Failed, ExitCode: 3, Reason: "exit status 3"}},
		{"unknown_command_fails_with_127", "no-such-command-yci", Result{Outcome: Failed, ExitCode: 127, Reason: "exit status 127"}},
		{"killed_by_its_own_signal_fails", "kill -KILL $$", Result{Outcome: Failed, ExitCode: 137, Reason: "killed by SIGKILL"}},
		{"last_command_decides", "false; true", Result{Outcome: Passed, ExitCode: 0, Reason: "exit status 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, _ := runOK(t, &Runner{}, attemptIn(t, tt.command))
			res.Duration = 0
			if diff := cmp.Diff(tt.want, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunnerInterleavesStdoutAndStderrInOrder(t *testing.T) {
	t.Parallel()
	a := attemptIn(t, "for i in 1 2 3; do echo out$i; echo err$i >&2; done; printf 'tail' >&2")
	res, log := runOK(t, &Runner{}, a)
	if res.Outcome != Passed {
		t.Fatalf("outcome = %v, want passed", res)
	}
	want := "out1\nerr1\nout2\nerr2\nout3\nerr3\ntail\n"
	if diff := cmp.Diff(want, outputOf(t, log)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestRunnerLogIsVisibleWhileTestRuns(t *testing.T) {
	t.Parallel()
	a := attemptIn(t, "echo first line; read -r _ < go1; echo second line; read -r _ < go2; echo last line")
	for _, fifo := range []string{"go1", "go2"} {
		if err := syscall.Mkfifo(filepath.Join(a.Dir, fifo), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan Result, 1)
	go func() {
		res, err := (&Runner{}).Run(t.Context(), a)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- res
	}()
	// The test is blocked on each fifo until it is released below, so what
	// the log shows meanwhile was written while the test ran.
	for _, step := range []struct{ line, fifo string }{{"first line\n", "go1"}, {"second line\n", "go2"}} {
		if !waitForLog(t, a.LogPath, step.line) {
			t.FailNow()
		}
		if err := os.WriteFile(filepath.Join(a.Dir, step.fifo), []byte("go\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if res := <-done; res.Outcome != Passed {
		t.Fatalf("result = %v, want passed", res)
	}
	if log := readLog(t, a.LogPath); !strings.Contains(log, "last line\n") {
		t.Errorf("log lacks the last line:\n%s", log)
	}
}

// waitForLog waits until the log at path contains text. Like waitForFile,
// it reports a timeout with t.Errorf and returns false.
func waitForLog(t *testing.T, path, text string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if pause.Poll(ctx, 5*time.Millisecond, func() bool { b, err := os.ReadFile(path); return err == nil && bytes.Contains(b, []byte(text)) }) != nil {
		t.Errorf("log never showed %q", text)
		return false
	}
	return true
}

func TestRunnerTruncatesLogAtLimitAndTestKeepsRunning(t *testing.T) {
	t.Parallel()
	const limit = 4096
	a := attemptIn(t, "head -c 1000000 /dev/zero | tr '\\0' x; echo; echo finished > marker")
	res, log := runOK(t, &Runner{LogLimit: limit}, a)
	if res.Outcome != Passed {
		t.Fatalf("result = %v, want passed", res)
	}
	note := LogPrefix + "log truncated at 4096 bytes; the test keeps running\n"
	before, after, ok := strings.Cut(log, note)
	if !ok {
		t.Fatalf("no truncation line in log:\n%.300s", log)
	}
	if len(before) != limit+1 || !strings.HasSuffix(before, "x\n") {
		t.Errorf("log before the truncation line is %d bytes ending %q, want %d ending in x and a newline", len(before), before[len(before)-2:], limit+1)
	}
	if !strings.HasPrefix(after, LogPrefix+"attempt 1/1 passed") {
		t.Errorf("log after the truncation line = %q, want the footer", after)
	}
	if _, err := os.Stat(filepath.Join(a.Dir, "marker")); err != nil {
		t.Errorf("test did not run to its end: %v", err)
	}
}

func TestRunnerEnvironmentHasFactsAndNoCredentials(t *testing.T) {
	t.Parallel()
	a := attemptIn(t, "env")
	a.Number = 2
	a.Test.Retries = 1
	a.Test.Env = map[string]string{"ENV_VAR_1": "foo"}
	a.Facts = map[string]string{"YCI_BUILD": "7", "YCI_PULL": "12", "YCI_SHA": "0123abc"}
	r := &Runner{BaseEnv: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=/home/ci",
		"GITHUB_ACCESS_TOKEN=ghp_secret",
		"GITHUB_APP_PRIVATE_KEY_FILE=/etc/yci/key.pem",
		"GITHUB_WEBHOOK_SECRET=hook",
		"NATS_URL=nats://user:pass@nats:4222",
		"YCI_LISTEN=:8080",
	}}
	res, log := runOK(t, r, a)
	if res.Outcome != Passed {
		t.Fatalf("result = %v", res)
	}
	env := make(map[string]string)
	for _, line := range strings.Split(outputOf(t, log), "\n") {
		if name, value, ok := strings.Cut(line, "="); ok {
			env[name] = value
		}
	}
	for name, want := range map[string]string{
		"HOME": "/home/ci", "ENV_VAR_1": "foo", "YCI_BUILD": "7", "YCI_PULL": "12",
		"YCI_SHA": "0123abc", "YCI_TEST": "unit", "YCI_ATTEMPT": "2",
	} {
		if env[name] != want {
			t.Errorf("%s = %q, want %q", name, env[name], want)
		}
	}
	for name := range env {
		if strings.HasPrefix(name, "GITHUB_") || strings.HasPrefix(name, "NATS_") || name == "YCI_LISTEN" {
			t.Errorf("credential %s reached the test", name)
		}
	}
}

func TestRunnerMasksSecretsInLog(t *testing.T) {
	t.Parallel()
	// The secret reaches the pipe in two writes, the second only after the
	// first is out (the fifo blocks it), so it is usually read in two
	// pieces; the MaskingWriter tests cover every split exactly.
	a := attemptIn(t, "printf 'token=hunt'; touch half; read -r _ < go; printf 'er22 and hunter22 again\\n'; echo $SECRET_IN_ENV")
	a.Test.Env = map[string]string{"SECRET_IN_ENV": "hunter22"}
	if err := syscall.Mkfifo(filepath.Join(a.Dir, "go"), 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		waitForFile(t, filepath.Join(a.Dir, "half"))
		if err := os.WriteFile(filepath.Join(a.Dir, "go"), []byte("go\n"), 0o600); err != nil {
			t.Error(err)
		}
	}()
	res, log := runOK(t, &Runner{Secrets: []string{"hunter22", "abc"}}, a)
	if res.Outcome != Passed {
		t.Fatalf("result = %v", res)
	}
	if strings.Contains(log, "hunter22") {
		t.Errorf("secret in log:\n%s", log)
	}
	if want := "token=*** and *** again\n***\n"; outputOf(t, log) != want {
		t.Errorf("output = %q, want %q", outputOf(t, log), want)
	}
	if !strings.Contains(log, "env: SECRET_IN_ENV=***\n") {
		t.Errorf("header does not mask the secret:\n%s", log)
	}
}

func TestRunnerKeepsOutputWithoutNewlinesAndBinary(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, command string }{
		{"one_long_line_without_newline", "head -c 300000 /dev/zero | tr '\\0' y > expected; cat expected"},
		{"binary_bytes", "head -c 200000 /dev/urandom > expected; printf '\\0\\377\\r\\033[2J' >> expected; cat expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := attemptIn(t, tt.command)
			res, log := runOK(t, &Runner{}, a)
			if res.Outcome != Passed {
				t.Fatalf("result = %v", res)
			}
			want, err := os.ReadFile(filepath.Join(a.Dir, "expected"))
			if err != nil {
				t.Fatal(err)
			}
			_, rest, _ := strings.Cut(log, "\n"+LogPrefix+"timeout: ")
			_, rest, _ = strings.Cut(rest, "\n")
			got, footer, ok := strings.Cut(rest, "\n"+LogPrefix+"attempt 1/1 passed")
			// Kept as written, but for terminal controls (see TermWriter).
			if !ok || got != neutralise(t, string(want), 0) {
				t.Errorf("output is %d bytes (footer found: %v), want the %d bytes written", len(got), ok, len(want))
			}
			if !strings.HasSuffix(footer, "\n") {
				t.Errorf("footer does not end the log with a newline: %q", footer)
			}
		})
	}
}

func TestRunnerTestDeletingItsOwnDirectory(t *testing.T) {
	t.Parallel()
	a := attemptIn(t, "rm -rf \"$PWD\"; echo still here; exit 4")
	a.Test.Retries = 1
	r := &Runner{}
	res, log := runOK(t, r, a)
	if res.Outcome != Failed || res.ExitCode != 4 {
		t.Errorf("first attempt = %v, want failed with exit status 4", res)
	}
	if outputOf(t, log) != "still here\n" {
		t.Errorf("output = %q", outputOf(t, log))
	}
	a.Number = 2
	res, log = runOK(t, r, a)
	want := Result{Outcome: Errored, ExitCode: -1, Reason: "working directory is missing"}
	res.Duration = 0
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("attempt in the deleted directory (-want +got):\n%s", diff)
	}
	if !strings.Contains(log, LogPrefix+"attempt 2/2 errored (working directory is missing)") {
		t.Errorf("log does not say why:\n%s", log)
	}
}

func TestRunnerReportsLogFailuresAsErrLog(t *testing.T) {
	t.Parallel()
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		logPath string
		want    error
	}{
		{"disk_full", "/dev/full", syscall.ENOSPC},
		{"log_directory_is_a_file", filepath.Join(notADir, "unit", "out.txt"), syscall.ENOTDIR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := attemptIn(t, "touch ran")
			a.LogPath = tt.logPath
			res, err := (&Runner{}).Run(t.Context(), a)
			if !errors.Is(err, ErrLog) || !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want ErrLog and %v", err, tt.want)
			}
			if res.Outcome != Errored || res.Reason == "" {
				t.Errorf("result = %+v, want errored with a reason", res)
			}
			if _, err := os.Stat(filepath.Join(a.Dir, "ran")); err == nil {
				t.Errorf("the test ran though its log could not be written")
			}
		})
	}
}

func TestRunnerStartsOnOwnLineAfterAbruptLog(t *testing.T) {
	t.Parallel()
	a := attemptIn(t, "echo again")
	a.Number = 0
	if err := os.MkdirAll(filepath.Dir(a.LogPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.LogPath, []byte("output of a worker that died mid-li"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, log := runOK(t, &Runner{}, a)
	if !strings.HasPrefix(log, "output of a worker that died mid-li\n"+LogPrefix+"test unit, attempt 1/1, ") {
		t.Errorf("header does not start a line of its own as attempt 1:\n%s", log)
	}
}

func TestRunnerDoesNotStartWhenAlreadyCanceled(t *testing.T) {
	t.Parallel()
	a := attemptIn(t, "touch ran")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res, err := (&Runner{}).Run(ctx, a)
	if err != nil || res.Outcome != Canceled || res.Reason != "canceled" {
		t.Errorf("Run = %+v, %v; want canceled", res, err)
	}
	if _, err := os.Stat(filepath.Join(a.Dir, "ran")); err == nil {
		t.Error("the test ran after its context ended")
	}
}

func TestRunnerMasksWorkerCredentialsATestFinds(t *testing.T) {
	t.Parallel()
	// Withheld from the environment, the token may still be found on disk
	// or in /proc; the log masks it anyway.
	a := attemptIn(t, "cat found-token.txt")
	if err := os.WriteFile(filepath.Join(a.Dir, "found-token.txt"), []byte("ghp_w0rker-t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &Runner{BaseEnv: []string{"PATH=" + os.Getenv("PATH"), "GITHUB_ACCESS_TOKEN=ghp_w0rker-t0ken"}}
	_, log := runOK(t, r, a)
	if got := outputOf(t, log); got != "***\n" {
		t.Errorf("output = %q, want the token masked", got)
	}
}

func TestRunnerMasksSecretsIssuedWhileItRuns(t *testing.T) {
	t.Parallel()
	issued := []string{}
	r := &Runner{SecretsFrom: func() []string { return issued }}
	issued = append(issued, "ghs_installation1") // a token handed out after the runner was made
	res, log := runOK(t, r, attemptIn(t, "echo ghs_installation1"))
	if res.Outcome != Passed {
		t.Fatalf("result = %v", res)
	}
	if strings.Contains(log, "ghs_installation1") || outputOf(t, log) != "***\n" {
		t.Errorf("issued secret not masked:\n%s", log)
	}
}
