package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/pause"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunExitStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "version", args: []string{"-version"}, wantCode: 0, wantStdout: " (go"},
		{name: "help_explains_the_states", args: []string{"-h"}, wantCode: 0, wantStderr: "retry-wait"},
		{name: "bad_values_reported_together", args: []string{"-limit", "0", "-timeout", "-1s"}, wantCode: 2, wantStderr: "-timeout must be positive"},
		{name: "bad_repo_limits_named", args: []string{"-repo-limits", "/nonexistent/limits"}, wantCode: 2, wantStderr: "/nonexistent/limits"},
		{name: "unreachable_nats_is_one_line", args: []string{"-nats", "nats://127.0.0.1:1"}, wantCode: 1, wantStderr: "queue: connecting to NATS at nats://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			code := run(context.Background(), tt.args, env(nil), &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit %d (want %d)\nstdout (want %q):\n%s\nstderr (want %q):\n%s",
					code, tt.wantCode, tt.wantStdout, stdout.String(), tt.wantStderr, stderr.String())
			}
		})
	}
}

// TestListsWhatAWorkerRecorded queues a test, records another as running
// as a worker does, and lists both through the command, as text and JSON.
func TestListsWhatAWorkerRecorded(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := natsserver.Start(ctx, natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	bus, err := events.Connect(ctx, srv.URL(), "test", events.Options{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	repo := events.Repo{Owner: "acme", Name: "widgets"}
	job := func(name string) events.TestJob {
		return events.TestJob{Repo: repo, Number: 12, HeadSHA: "0123456789abcdef", Build: 3, Attempt: 1,
			Test: events.TestSpec{Name: name, Command: "true"}}
	}
	for _, name := range []string{"slow", "waits"} {
		if err := bus.Queue().PublishTest(ctx, job(name)); err != nil {
			t.Fatal(err)
		}
	}
	done, err := bus.Attempts().MarkRunning(ctx, events.RunningAttemptOf(job("slow"), "box-a:/srv/ws", time.Now().Add(-90*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	// A consumer counts new messages a moment after they are stored.
	// Past the deadline the listing below shows what was counted.
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pause.Poll(waitCtx, 20*time.Millisecond, func() bool {
		backlog, err := bus.Board().Backlog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(backlog) == 2 && backlog[1].Pending == 2
	}); err != nil {
		t.Logf("the backlog never showed both tests pending: %v", err)
	}

	var stdout, stderr strings.Builder
	if code := run(ctx, []string{"-nats", srv.URL()}, env(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(stdout.String(), "\n")
	// Every field but the age, which depends on how long the test takes.
	want := []string{
		"running acme/widgets 12 0123456 3 slow 1 box-a:/srv/ws",
		"queued acme/widgets 12 0123456 3 waits 1",
	}
	for i, w := range want {
		fields := strings.Fields(lines[i+1])
		if len(fields) < 8 {
			t.Errorf("line %d = %q, want %q and an age", i+1, lines[i+1], w)
			continue
		}
		if got := strings.Join(append(fields[:7:7], fields[8:]...), " "); got != w {
			t.Errorf("line %d = %q, want %q and an age", i+1, lines[i+1], w)
		}
	}
	if !strings.Contains(stdout.String(), "handle_test: 2 waiting for a worker") {
		t.Errorf("no handle_test backlog line:\n%s", stdout.String())
	}
	if !strings.Contains(stdout.String(), "1      acme/widgets  2       0        -    1") {
		t.Errorf("no line of acme/widgets's place:\n%s", stdout.String())
	}

	stdout.Reset()
	if code := run(ctx, []string{"-nats", srv.URL(), "-json"}, env(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("-json: exit %d: %s", code, stderr.String())
	}
	var got listing
	if err := json.Unmarshal([]byte(stdout.String()), &got); err != nil {
		t.Fatalf("-json output: %v\n%s", err, stdout.String())
	}
	if len(got.Entries) != 2 || got.Entries[0].State != events.Running || got.Entries[0].Worker != "box-a:/srv/ws" || len(got.Backlog) != 2 {
		t.Errorf("-json listing %+v, want the running and the queued test and two backlogs", got)
	}
	if len(got.Repositories) != 1 || got.Repositories[0].Repo != repo || got.Repositories[0].Place != 1 {
		t.Errorf("-json repositories %+v, want acme/widgets first", got.Repositories)
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	repo := events.Repo{Owner: "acme", Name: "web"}
	snap := events.Snapshot{Taken: now, Truncated: true, Entries: []events.Entry{
		{State: events.Preparing, Repo: repo, Number: 4, HeadSHA: "abcdef0123", Since: now.Add(-3 * time.Second)},
		{State: events.Running, Repo: repo, Number: 4, HeadSHA: "abcdef0123", Build: 2, Test: "foo-x", Attempt: 1,
			Worker: "ci-a:/srv/yourci/workspace", Since: now.Add(-125 * time.Second)},
		{State: events.RetryWait, Repo: repo, Number: 4, HeadSHA: "abcdef0123", Build: 2, Test: "bar-y", Attempt: 2,
			Since: now.Add(-time.Minute), NotBefore: now.Add(9 * time.Minute)},
	}}
	backlog := []events.ConsumerBacklog{{Consumer: "handle_pull", AckPending: 1}, {Consumer: "handle_test", Pending: 0, AckPending: 2, Redelivered: 1}}
	var b strings.Builder
	shares := []events.RepoShare{
		{Repo: events.Repo{Owner: "acme", Name: "docs"}, Stored: 1, Place: 1},
		{Repo: repo, Stored: 3, Held: 1, Limit: events.RepoLimit{Weight: 2}, Place: 2},
		{Repo: events.Repo{Owner: "acme", Name: "mono"}, Stored: 80, Held: 2, Limit: events.RepoLimit{MaxRunning: 2}},
	}
	if err := render(&b, snap, backlog, shares); err != nil {
		t.Fatal(err)
	}
	want := `STATE       REPOSITORY  PULL  COMMIT   BUILD  TEST   ATTEMPT  AGE   WHO/WHEN
preparing   acme/web    4     abcdef0  -      -      -        3s
running     acme/web    4     abcdef0  2      foo-x  1        2m5s  ci-a:/srv/yourci/workspace
retry-wait  acme/web    4     abcdef0  2      bar-y  2        1m0s  retry in 9m0s
(more jobs are queued than -limit lists)
handle_pull: 0 waiting for a worker, 1 taken and not done (0 of them redelivered)
handle_test: 0 waiting for a worker, 2 taken and not done (1 of them redelivered)
PLACE   REPOSITORY  STORED  RUNNING  CAP  WEIGHT
1       acme/docs   1       0        -    1
2       acme/web    3       1        -    2
at cap  acme/mono   80      2        2    1
`
	if got := b.String(); got != want {
		t.Errorf("render:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderNamesAMergeGroup(t *testing.T) {
	t.Parallel()
	const head = "4fd5a3c0a7f9b5d31e2c8e0f9a6b7c8d9e0f1a2b"
	n, err := events.GroupNumber(head)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	snap := events.Snapshot{Taken: now, Entries: []events.Entry{
		{State: events.Preparing, Repo: events.Repo{Owner: "acme", Name: "web"}, Number: n, HeadSHA: head, Since: now},
	}}
	var b strings.Builder
	if err := render(&b, snap, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.Contains(got, "acme/web    merge group 4fd5a3c0a  4fd5a3c") {
		t.Errorf("render:\n%s\nwant the merge group named as one", got)
	}
}
