package worker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/projector"
)

// projectorClients is projector.Clients for the rig's GitHub stand-in,
// from the worker's GitHub adapter (tokenGitHub: statuses; appGitHub:
// check runs): the worker's own view of GitHub has no writer at all.
type projectorClients struct{ gh GitHub }

func (c projectorClients) Client(ctx context.Context, id int64) (projector.Client, error) {
	pc, ok := c.gh.(projector.Clients)
	if !ok {
		return projector.Client{}, fmt.Errorf("%T gives the projector no writer", c.gh)
	}
	return pc.Client(ctx, id)
}

// waitRecord waits until build k's record satisfies done, or fails.
func waitRecord(t *testing.T, records *events.Records, k events.BuildKey, done func(events.BuildRecord) bool) events.BuildRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	found := make(chan events.BuildRecord, 1)
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- records.WatchBuilds(ctx, func(rec events.BuildRecord) {
			if rec.Key == k && done(rec) {
				select {
				case found <- rec:
				default:
				}
				cancel()
			}
		})
	}()
	select {
	case rec := <-found:
		<-watchDone
		return rec
	case err := <-watchDone:
		select {
		case rec := <-found:
			return rec
		default:
		}
		t.Fatalf("waiting for build record %s: %v (watch: %v)", k, ctx.Err(), err)
	}
	return events.BuildRecord{}
}

// TestWorkerChangesOnlyRecords runs a build on a worker, which cannot
// write GitHub (its Installation holds no writer): its handlers change
// records only, the records carry every final state with what GitHub
// shows of it, and the projector shows it all.
func TestWorkerChangesOnlyRecords(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	pr := r.openPull(t, map[string]string{".yci.py": seedMatrix, "test.sh": testScript})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "delivery-1")
	k := events.BuildKey{Repo: events.Repo{Owner: owner, Name: repoName}, Pull: pr.GetNumber(), Build: 1}
	rec := waitRecord(t, r.bus.Records(), k, func(rec events.BuildRecord) bool {
		for _, tr := range rec.Tests {
			if !tr.State.Final() {
				return false
			}
		}
		return len(rec.Tests) == len(matrix)
	})
	if !rec.Projected {
		t.Error("the record is not marked projected")
	}
	for _, tr := range rec.Tests {
		if tr.Report == nil || tr.Report.Summary == "" || tr.LogURL == "" || tr.Description == "" {
			t.Errorf("test %s lacks what GitHub shows of it: %+v", tr.Name, tr)
		}
		// The plan: the command and attempts as .yci.py gave them.
		if tr.Command != "./test.sh" || tr.MaxAttempts != 3 {
			t.Errorf("test %s planned as %q with %d attempts, want ./test.sh with 3", tr.Name, tr.Command, tr.MaxAttempts)
		}
	}
	final := r.waitFinal(t, sha, append(matrix, "yci")...)
	if s := final["yci"]; s.GetState() != "success" || !strings.HasPrefix(s.GetDescription(), "4 passed (1 flaky) of 4; tested merged into main at ") {
		t.Errorf("summary from the record: %s %q", s.GetState(), s.GetDescription())
	}
	for _, c := range matrix {
		if s := final[c]; s.GetState() != "success" || s.GetTargetURL() == "" {
			t.Errorf("%s from the record: %s %q -> %q", c, s.GetState(), s.GetDescription(), s.GetTargetURL())
		}
	}
}
