package worker

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/pipeline"
)

// TestJobsThatKeepCrashingWorkersEndAsErrors checks what a worker does with
// a message's last delivery (events' LastChance, after workers died with it
// again and again): it reports an error status instead of trying once more
// and losing the job silently.
func TestJobsThatKeepCrashingWorkersEndAsErrors(t *testing.T) {
	t.Parallel()
	gh, err := fakegithub.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	if _, err := gh.CreateRepo(owner, repoName); err != nil {
		t.Fatal(err)
	}
	sha, err := gh.Commit(owner, repoName, "main", map[string]string{"README": "x\n"}, "init")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	records := memrecords.New()
	w, err := New(Options{Workspace: ws, Evaluator: &pipeline.Evaluator{}, Runner: &pipeline.Runner{},
		GitHub: tokenGitHub{gh}, Queue: queueOf(&events.Bus{}), Records: records, HTTPRoot: httpRoot})
	if err != nil {
		t.Fatal(err)
	}
	repo := events.Repo{Owner: owner, Name: repoName}
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	t.Run("test_job", func(t *testing.T) {
		job := events.TestJob{Repo: repo, Number: 7, HeadSHA: sha, Build: 2, Attempt: 1, Test: events.TestSpec{Name: "crashy"}}
		if err := w.tests.abandonTest(ctx, log, job, 10); err != nil {
			t.Fatal(err)
		}
		s := testRecord(t, records, job)
		if s.State != events.TestErrored || !strings.Contains(s.Description, "lost 10 times") {
			t.Errorf("record %s %q, want errored saying the attempt was lost 10 times", s.State, s.Description)
		}
		if !strings.HasSuffix(s.LogURL, "/pulls/7/2/crashy/out.txt") {
			t.Errorf("log URL %q", s.LogURL)
		}
	})
	t.Run("test_job_waiting_for_disk_says_so", func(t *testing.T) {
		full, err := New(Options{Workspace: ws, Evaluator: &pipeline.Evaluator{}, Runner: &pipeline.Runner{},
			GitHub: tokenGitHub{gh}, Queue: queueOf(&events.Bus{}), Records: records, HTTPRoot: httpRoot,
			Disk: &DiskGuard{Root: ws.Root(), MinFree: 1 << 30, Statfs: func(string) (FSStat, error) {
				return FSStat{Size: 10 << 30, Free: 1 << 20}, nil
			}}})
		if err != nil {
			t.Fatal(err)
		}
		job := events.TestJob{Repo: repo, Number: 8, HeadSHA: sha, Build: 2, Attempt: 1, Test: events.TestSpec{Name: "starved"}}
		if err := full.tests.abandonTest(ctx, log, job, 10); err != nil {
			t.Fatal(err)
		}
		s := testRecord(t, records, job)
		if s.State != events.TestErrored || !strings.Contains(s.Description, "gave up after 10 tries: infrastructure (disk): no space left on device: 1 MiB free") {
			t.Errorf("record %s %q, want errored naming the disk", s.State, s.Description)
		}
	})
	t.Run("pull_event", func(t *testing.T) {
		ev := events.PullEvent{Repo: repo, Number: 7, HeadSHA: sha}
		if err := w.pulls.abandon(ctx, log, ev, prepAttempt{delivered: 10, maxDeliver: 10}); err != nil {
			t.Fatal(err)
		}
		got := headShows(t, w, ev)
		if !strings.HasPrefix(got, "yci: error ") || !strings.Contains(got, "gave up preparing the build after 9 attempts") {
			t.Errorf("the head's summary shows %q, want an error saying it gave up", got)
		}
		if want := "/" + owner + "/" + repoName + "/pulls/7/prepare-" + sha + ".txt>"; !strings.HasSuffix(got, want) {
			t.Errorf("the head's summary shows %q, want it linking %s", got, want)
		}
	})
}

// testRecord is job's test as its build record has it, or fails the test.
func testRecord(t *testing.T, records BuildRecords, job events.TestJob) events.TestRecord {
	t.Helper()
	rec, err := records.BuildRecord(context.Background(), buildKey(job.Repo, job.Number, job.Build))
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range rec.Tests {
		if tr.Name == job.Test.Name {
			return tr
		}
	}
	t.Fatalf("build %d has no record of test %s: %+v", job.Build, job.Test.Name, rec)
	return events.TestRecord{}
}
