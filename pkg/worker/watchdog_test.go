package worker

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
	dto "github.com/prometheus/client_model/go"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
	"github.com/yourci/yourci/pkg/pipeline"
)

// hangingGitHub is GitHub whose token endpoint never answers: Installation
// (its first call) blocks until release is closed, and, unless it heeds ctx, ignores
// cancellation as a goroutine blocked in a system call would. entered is
// closed when the first call blocks.
type hangingGitHub struct {
	heed    bool
	entered chan struct{}
	release chan struct{}
}

func (h *hangingGitHub) Installation(ctx context.Context, _ int64) (Installation, error) {
	select {
	case <-h.entered:
		// Only the first call hangs: the failure report asks again.
		return Installation{}, errors.New("token endpoint down")
	default:
		close(h.entered)
	}
	if h.heed {
		select {
		case <-ctx.Done():
			return Installation{}, ctx.Err()
		case <-h.release:
		}
	}
	<-h.release
	return Installation{}, errors.New("released")
}

// hangWorker is a Worker whose pulls and commands get limit each and
// their handlers grace more once stopped; tweaks change its options
// before it is made.
func hangWorker(t *testing.T, gh GitHub, limit time.Duration, tweaks ...func(*Options)) *Worker {
	t.Helper()
	ws, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Workspace: ws, Evaluator: &pipeline.Evaluator{}, Runner: &pipeline.Runner{},
		GitHub: gh, Queue: newFakeQueue(), Records: memrecords.New(), HTTPRoot: httpRoot,
		Logger:         slog.New(slog.DiscardHandler),
		PrepareTimeout: limit, CommandTimeout: limit,
	}
	for _, tweak := range tweaks {
		tweak(&opts)
	}
	w, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	w.grace, w.pulls.grace = limit, limit
	return w
}

var hangEvent = events.PullEvent{Repo: events.Repo{Owner: "acme", Name: "widget"}, Number: 3, HeadSHA: decideSHA, Delivery: "d1"}

func TestPreparationPastItsDeadline(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		heed       bool
		wantErr    string
		wantResult string
		wantStuck  bool
	}{
		{name: "a_handler_that_heeds_cancellation_is_stopped_and_handed_back", heed: true,
			wantErr: "preparing this commit took more than 200ms; stopped", wantResult: "cancelled"},
		{name: "a_handler_that_ignores_cancellation_frees_its_slot_and_is_named_stuck",
			wantErr: "preparing this commit took more than 200ms and did not stop", wantResult: "stuck", wantStuck: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gh := &hangingGitHub{heed: tc.heed, entered: make(chan struct{}), release: make(chan struct{})}
			w := hangWorker(t, gh, 200*time.Millisecond)
			defer close(gh.release)

			v := w.pulls.decide(context.Background(), w.log, hangEvent, prepAttempt{delivered: 1, maxDeliver: 10})

			if v.Outcome != HandBack || v.Err == nil || !strings.Contains(v.Err.Error(), tc.wantErr) {
				t.Fatalf("verdict %v, err %v; want a hand-back saying %q", v.Outcome, v.Err, tc.wantErr)
			}
			if got := handlersEnded(t, w, "pull", tc.wantResult); got != 1 {
				t.Errorf("handlers ended %s: %v, want 1", tc.wantResult, got)
			}
			err := w.Watchdog().Check()
			if !tc.wantStuck {
				if err != nil {
					t.Errorf("health check after the handler returned: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "slot pull 1 stuck: acme/widget#3 at "+decideSHA+", running since ") {
				t.Errorf("health check = %v, want it to name the stuck slot and its job", err)
			}
		})
	}
}

func TestStuckHandlerLeavesTheHealthCheckOnceItReturns(t *testing.T) {
	t.Parallel()
	gh := &hangingGitHub{entered: make(chan struct{}), release: make(chan struct{})}
	w := hangWorker(t, gh, 100*time.Millisecond)
	v := w.pulls.decide(context.Background(), w.log, hangEvent, prepAttempt{delivered: 1, maxDeliver: 10})
	if !errors.Is(v.Err, ErrStuck) {
		t.Fatalf("verdict err %v, want ErrStuck", v.Err)
	}
	if w.Watchdog().Check() == nil {
		t.Fatal("health check passes while the handler is stuck")
	}
	close(gh.release)
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for w.Watchdog().Check() != nil {
		select {
		case <-deadline:
			t.Fatalf("the returned handler is still named: %v", w.Watchdog().Check())
		case <-tick.C:
		}
	}
}

func TestLastDeliveryOfAHangingCommitGivesUpWithAnErrorStatus(t *testing.T) {
	t.Parallel()
	w := hangWorker(t, fakeGitHub{}, time.Minute)
	v := w.pulls.decide(context.Background(), w.log, hangEvent, prepAttempt{delivered: 10, maxDeliver: 10})
	if v.Outcome != Done {
		t.Fatalf("verdict %v, err %v; want Done", v.Outcome, v.Err)
	}
	if got := headShows(t, w, hangEvent); !strings.Contains(got, "yci: error") {
		t.Errorf("the head's summary shows %q, want an error", got)
	}
}

func TestCommandPastItsDeadlineIsStuckAndFreesItsSlot(t *testing.T) {
	t.Parallel()
	gh := &hangingGitHub{entered: make(chan struct{}), release: make(chan struct{})}
	defer close(gh.release)
	w := hangWorker(t, gh, 100*time.Millisecond)
	// The command claims its comment, then hangs authenticating, before it
	// could queue anything.
	w.opts.Reruns = unusedReruns{}
	w.commands = newCommandHandler(w)
	ev := events.CommandEvent{Repo: events.Repo{Owner: "acme", Name: "widget"}, Number: 3, CommentID: 9}
	err := w.guard(context.Background(), "command", "acme/widget#3", "carrying out this comment", 100*time.Millisecond, w.grace,
		func(ctx context.Context) error { return w.commands.handle(ctx, w.log, ev) })
	if !errors.Is(err, ErrStuck) || !strings.Contains(err.Error(), "carrying out this comment took more than 100ms") {
		t.Fatalf("err %v, want ErrStuck naming the comment", err)
	}
	if err := w.Watchdog().Check(); err == nil || !strings.Contains(err.Error(), "slot command 1 stuck: acme/widget#3") {
		t.Errorf("health check = %v, want the stuck command named", err)
	}
}

// TestMirrorFromARemoteThatNeverAnswers runs a real git against a server
// that accepts the connection and never answers: the preparation's
// deadline kills git and the attempt is handed back saying why.
func TestMirrorFromARemoteThatNeverAnswers(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	pull := openPull("open", decideSHA, "alice")
	pull.Base.Repo.CloneURL = github.Ptr("http://" + ln.Addr().String() + "/acme/widget.git")
	inst := Installation{Pulls: &fakePulls{pull: pull}, Permissions: fakePermissions{level: "write"}}
	q := newFakeQueue()
	w := hangWorker(t, fakeGitHub{inst: inst}, 2*time.Second, func(o *Options) { o.Queue = q })

	v := w.pulls.decide(context.Background(), w.log, hangEvent, prepAttempt{delivered: 1, maxDeliver: 10})

	want := "preparing this commit took more than 2s; stopped: "
	if v.Outcome != HandBack || v.Err == nil || !strings.Contains(v.Err.Error(), want) || !strings.Contains(v.Err.Error(), "updating mirror") {
		t.Fatalf("verdict %v, err %v; want a hand-back saying %q while updating the mirror", v.Outcome, v.Err, want)
	}
	if got := headShows(t, w, hangEvent); !strings.Contains(got, "yci: pending") || !strings.Contains(got, "took more than 2s; stopped") {
		t.Errorf("the head's summary shows %q, want it pending, saying the attempt was stopped", got)
	}
	if err := w.Watchdog().Check(); err != nil {
		t.Errorf("health check after git was stopped: %v", err)
	}
}

// handlersEnded reads the worker's count of kind handlers past their
// deadline with result.
func handlersEnded(t *testing.T, w *Worker, kind, result string) float64 {
	t.Helper()
	var m dto.Metric
	if err := w.opts.Metrics.HandlersEnded.WithLabelValues(kind, result).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// unusedReruns is a RerunQueue a test's command reaches only to claim its
// comment, which it is granted; the command hangs before anything else.
type unusedReruns struct{ RerunQueue }

func (unusedReruns) ClaimComment(context.Context, events.Repo, int, int64, string, string) (bool, error) {
	return true, nil
}

// TestGuardReturnsWhatQuickWorkReturned runs work that returns at once
// many times: a work whose deferred cancel ran before guard's select
// looked once made guard report a deadline that never passed.
func TestGuardReturnsWhatQuickWorkReturned(t *testing.T) {
	t.Parallel()
	w := hangWorker(t, &hangingGitHub{entered: make(chan struct{}), release: make(chan struct{})}, time.Hour)
	want := errors.New("refused")
	for i := range 2000 {
		err := w.guard(context.Background(), "pull", "acme/widget#3", "preparing this commit", time.Hour, time.Hour,
			func(context.Context) error { return want })
		if err != want {
			t.Fatalf("run %d: guard returned %v, want the work's own error", i, err)
		}
	}
}
