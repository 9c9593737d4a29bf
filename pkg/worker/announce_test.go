package worker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pause"
)

// runningHeld holds every build-record write that leaves a test running
// until release is closed: a record store that answers slowly.
type runningHeld struct {
	BuildRecords
	release chan struct{}
}

func (h runningHeld) UpdateBuild(ctx context.Context, k events.BuildKey, change func(*events.BuildRecord) error) (events.BuildRecord, error) {
	rec, err := h.BuildRecords.UpdateBuild(ctx, k, change)
	for _, t := range rec.Tests {
		if err == nil && t.State == events.TestRunning {
			select {
			case <-h.release:
			case <-ctx.Done():
			}
			return rec, err
		}
	}
	return rec, err
}

// TestATestStartsWithoutWaitingForItsRunningRecord: recording a test as
// running is not on the path of its start (issue 17's burst): with that
// write held, the test runs all the same; once it is released the test
// ends passed, its record final.
func TestATestStartsWithoutWaitingForItsRunningRecord(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	r := newRig(t, func(o *Options) { o.Records = runningHeld{BuildRecords: o.Records, release: release} })
	started := filepath.Join(t.TempDir(), "started")
	pr := r.openPull(t, map[string]string{".yci.py": "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n" +
		"    yield Bash('touch " + started + "', name='quick')\n"})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "d1")
	// Far longer than a test takes: only a test waiting for its record
	// reaches it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := pause.Poll(ctx, 20*time.Millisecond, func() bool {
		_, err := os.Stat(started)
		return err == nil
	})
	close(release)
	if err != nil {
		t.Fatalf("the test did not start while its running record was held: %v", err)
	}
	if got := r.waitFinal(t, sha, "yci/quick")["yci/quick"]; got.GetState() != "success" {
		t.Errorf("yci/quick = %s, want success", got.GetState())
	}
	rec, err := r.bus.Records().BuildRecord(context.Background(), buildKey(events.Repo{Owner: owner, Name: repoName}, pr.GetNumber(), 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Tests) != 1 || rec.Tests[0].State != events.TestPassed {
		t.Errorf("record's tests = %+v, want quick passed", rec.Tests)
	}
}

// TestMirrorSince: a pull event's mirror need be no older than when the
// event was queued, give or take the queue's clock; an event whose time is
// not known fetches whatever.
func TestMirrorSince(t *testing.T) {
	t.Parallel()
	queued := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		p    *prepLog
		want time.Time
	}{
		{name: "no_log", p: nil},
		{name: "time_unknown", p: &prepLog{}},
		{name: "queued_plus_slack", p: &prepLog{since: queued}, want: queued.Add(clockSlack)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.mirrorSince(); !got.Equal(tc.want) {
				t.Errorf("mirrorSince = %v, want %v", got, tc.want)
			}
		})
	}
}
