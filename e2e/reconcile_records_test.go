package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/githubauth"
	"github.com/yourci/yourci/pkg/pause"
	"github.com/yourci/yourci/pkg/projector"
	"github.com/yourci/yourci/pkg/status"
)

// fastLease lets a worker take the projector lease soon after its holder
// was killed.
const fastLease = "YCI_PROJECTOR_LEASE=2s"

// purgeTestJobs removes every test job from the stream, as a lost NATS
// store or a purge by hand would: the jobs are gone for good, while their
// build records still say queued or running.
func (s *stack) purgeTestJobs() {
	s.tb.Helper()
	nc, err := nats.Connect(s.cfg.NATSURL, nats.Timeout(10*time.Second))
	if err != nil {
		s.tb.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		s.tb.Fatal(err)
	}
	stream, err := js.Stream(s.ctx, events.DefaultStream)
	if err != nil {
		s.tb.Fatal(err)
	}
	if err := stream.Purge(s.ctx, jetstream.WithPurgeSubject(events.TestSubjects)); err != nil {
		s.tb.Fatalf("purging the test jobs: %v", err)
	}
}

// waitShown waits until build 1 of sha's record says the projector showed
// every part as the record has it now: only then does GitHub differ from
// the record when someone changes it.
func (s *stack) waitShown(sha string) {
	s.tb.Helper()
	nc, err := nats.Connect(s.cfg.NATSURL, nats.Timeout(10*time.Second))
	if err != nil {
		s.tb.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		s.tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	kv, err := js.KeyValue(ctx, events.DefaultRecordBucket)
	if err != nil {
		s.tb.Fatal(err)
	}
	shown := func() bool {
		keys, err := kv.Keys(ctx)
		if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
			s.tb.Logf("listing records: %v", err)
			return false
		}
		for _, key := range keys {
			entry, err := kv.Get(ctx, key)
			var rec events.BuildRecord
			if err != nil || !strings.HasPrefix(key, "build.") || json.Unmarshal(entry.Value(), &rec) != nil {
				continue
			}
			if rec.SHA != sha || rec.Key.Build != 1 {
				continue
			}
			for _, st := range projector.Project(rec, "") {
				if rec.Shown[st.Part].Mark != st.Mark {
					return false
				}
			}
			return true
		}
		return false
	}
	if err := pause.Poll(ctx, 50*time.Millisecond, shown); err != nil {
		s.tb.Fatalf("build 1 of %.7s never recorded as shown: %v", sha, err)
	}
}

// waitNotRunning waits until no worker is recorded as running a test of
// sha: a killed worker's record expires after events.RunningTTL, and the
// sweep counts a recorded attempt as live until then.
func (s *stack) waitNotRunning(sha string) {
	s.tb.Helper()
	nc, err := nats.Connect(s.cfg.NATSURL, nats.Timeout(10*time.Second))
	if err != nil {
		s.tb.Fatal(err)
	}
	defer nc.Close()
	board, err := events.NewBoard(nc, events.Options{})
	if err != nil {
		s.tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	err = pause.Poll(ctx, 200*time.Millisecond, func() bool {
		running, err := board.Running(ctx)
		if err != nil {
			return false
		}
		for _, a := range running {
			if a.HeadSHA == sha {
				return false
			}
		}
		return true
	})
	if err != nil {
		s.tb.Fatalf("the killed worker's attempt on %.7s is still recorded as running: %v", sha, err)
	}
}

// runOf is sha's check run of test name in build, or nil.
func runOf(runs []github.CheckRun, name string, build int) *github.CheckRun {
	for i, r := range runs {
		id, err := status.ParseExternalID(r.GetExternalID())
		if err == nil && id.Test == name && id.Build == build && id.Rerun == 0 {
			return &runs[i]
		}
	}
	return nil
}

// allCompleted reports whether no check run is queued or in progress.
func allCompleted(runs []github.CheckRun) bool {
	for _, r := range runs {
		if r.GetStatus() != "completed" {
			return false
		}
	}
	return len(runs) > 0
}

// TestReconcileRepairsALostJobsCheckRunUnderAppAuth loses a running test's
// job under App auth: its worker is killed and the job purged from the
// stream, so its check run stays in progress and nothing will ever finish
// it. Once the dead worker's running attempt has expired, the sweep (the real reconcile binary, App auth) sees the record left
// running with no job, ends the lost build's test in the record and
// queues a rebuild; the projector then shows both: the lost run ends
// cancelled, and the rebuild's run ends with the test's true result.
func TestReconcileRepairsALostJobsCheckRunUnderAppAuth(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	app := s.appEnv()
	env := append(append([]string(nil), app...), "YCI_JOBS=1", "YCI_STATUS_HOLD=0s", fastLease)
	first := s.startWorker("box", env...)
	// Build 1's attempt waits (to be lost); the rebuild's passes.
	_, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"lost"}, 0, 0),
		"test.sh": s.script(`[ "$YCI_BUILD" = 1 ] && { wait_release; exit 1; }; echo "true result"`)})
	s.waitCheckRuns(sha, "lost in progress", func(runs []github.CheckRun) bool {
		r := runOf(runs, "lost", 1)
		return r != nil && r.GetStatus() == "in_progress"
	})
	s.waitFile("started-" + sha + "-lost-*")

	first.Kill()
	s.purgeTestJobs()
	// The same workspace: the new worker kills what the dead one left.
	s.startWorker("box", env...)
	s.waitNotRunning(sha)
	s.reconcile(1, append(app, "YCI_STALE_AFTER=1ns")...)

	runs := s.waitCheckRuns(sha, "every check run completed, the rebuild's passed", func(runs []github.CheckRun) bool {
		r := runOf(runs, "lost", 2)
		return r != nil && r.GetConclusion() == "success" && allCompleted(runs)
	})
	if lost := runOf(runs, "lost", 1); lost.GetConclusion() != "cancelled" || !strings.Contains(lost.GetOutput().GetTitle(), "lost") {
		t.Errorf("the lost build's check run ended %s %q, want cancelled, saying it was lost:\n%s",
			lost.GetConclusion(), lost.GetOutput().GetTitle(), describeRuns(runs))
	}
	if latest := s.gh.LatestCheckRuns(owner, repoName, sha)["yci/lost"]; latest.GetConclusion() != "success" {
		t.Errorf("GitHub shows yci/lost as %s/%s, want the rebuild's success:\n%s", latest.GetStatus(), latest.GetConclusion(), describeRuns(runs))
	}
	if n := len(s.starts(sha, "lost")); n != 2 {
		t.Errorf("the test started %d times, want 2: the lost attempt and the rebuild's", n)
	}
	if st := s.gh.Statuses(owner, repoName, sha); len(st) != 0 {
		t.Errorf("%d commit statuses under App auth; the sweep writes nothing itself", len(st))
	}
}

// TestReconcileRestoresWhatGitHubShowsOtherwise changes a finished test's
// check run (App auth) or commit status (token) to failure behind the
// record's back; the sweep sees GitHub differ from the record and the
// projector writes the record's success again.
func TestReconcileRestoresWhatGitHubShowsOtherwise(t *testing.T) {
	t.Parallel()
	for _, checks := range []bool{true, false} {
		name := "commit_status"
		if checks {
			name = "check_run"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackOptions{})
			var auth []string
			if checks {
				auth = s.appEnv()
			}
			s.startWorker("box", append(append([]string(nil), auth...), "YCI_JOBS=1")...)
			_, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"kept"}, 0, 0), "test.sh": s.script("echo passed")})
			if checks {
				s.waitCheckRuns(sha, "kept passed", func(runs []github.CheckRun) bool {
					r := runOf(runs, "kept", 1)
					return r != nil && r.GetConclusion() == "success"
				})
				s.waitShown(sha)
				s.setCheckRun(sha, "kept", "failure")
			} else {
				s.waitFinal(sha, "yci/kept")
				s.waitShown(sha)
				s.setStatus(sha, "yci/kept", "failure", "changed by hand")
			}

			s.reconcile(1, auth...)

			if checks {
				s.waitCheckRuns(sha, "kept success again", func(runs []github.CheckRun) bool {
					return runOf(runs, "kept", 1).GetConclusion() == "success"
				})
				return
			}
			got := s.waitStatuses(sha, "yci/kept success again", func(m map[string]github.RepoStatus) bool {
				st := m["yci/kept"]
				return st.GetState() == "success"
			})
			if st := got["yci/kept"]; !strings.HasPrefix(st.GetDescription(), "passed") {
				t.Errorf("yci/kept restored as %q, want the record's description", st.GetDescription())
			}
		})
	}
}

// setCheckRun concludes test name's check run of build 1 as conclusion,
// through GitHub's API as the App, behind YourCI's back.
func (s *stack) setCheckRun(sha, name, conclusion string) {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	key := filepath.Join(s.dir, "app-key.pem")
	if _, err := os.Stat(key); err != nil {
		s.tb.Fatalf("no App key: %v", err)
	}
	auth, err := githubauth.New(githubauth.Config{AppID: s.gh.AppID(), AppPrivateKeyFile: key,
		APIURL: s.gh.URL() + "/", Timeout: 10 * time.Second})
	if err != nil {
		s.tb.Fatal(err)
	}
	appClient, err := auth.App()
	if err != nil {
		s.tb.Fatal(err)
	}
	inst, _, err := appClient.Apps.GetRepositoryInstallation(ctx, owner, repoName)
	if err != nil {
		s.tb.Fatalf("finding the installation: %v", err)
	}
	client, err := auth.ForInstallation(ctx, inst.GetID())
	if err != nil {
		s.tb.Fatal(err)
	}
	run := runOf(s.gh.CheckRuns(owner, repoName, sha), name, 1)
	if run == nil {
		s.tb.Fatalf("no check run of %s", name)
	}
	_, _, err = client.Checks.UpdateCheckRun(ctx, owner, repoName, run.GetID(), github.UpdateCheckRunOptions{
		Name: run.GetName(), Status: github.Ptr("completed"), Conclusion: github.Ptr(conclusion),
		Output: &github.CheckRunOutput{Title: github.Ptr("changed by hand"), Summary: github.Ptr("changed by hand")}})
	if err != nil {
		s.tb.Fatalf("setting %s's check run to %s by hand: %v", name, conclusion, err)
	}
	if got := runOf(s.gh.CheckRuns(owner, repoName, sha), name, 1).GetConclusion(); got != conclusion {
		s.tb.Fatalf("%s's check run is %s after the change by hand, want %s", name, got, conclusion)
	}
}
