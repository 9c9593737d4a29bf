package worker

import (
	"context"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/projector"
)

// projectorClients is projector.Clients for the rig's GitHub stand-in.
type projectorClients struct{ gh tokenGitHub }

func (c projectorClients) Client(ctx context.Context, id int64) (projector.Client, error) {
	inst, err := c.gh.Installation(ctx, id)
	if err != nil {
		return projector.Client{}, err
	}
	return projector.Client{Statuses: inst.Statuses}, nil
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

// TestProjectedWorkerChangesOnlyRecords runs a build on a worker whose
// records a projector shows: its handlers write nothing to GitHub, the
// record carries every final state with what GitHub shows of it, and a
// projector started afterwards shows it all from the record alone.
func TestProjectedWorkerChangesOnlyRecords(t *testing.T) {
	t.Parallel()
	r := newRig(t, withRecords, func(o *Options) { o.Projected = true })
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
	if got := r.gh.Statuses(owner, repoName, sha); len(got) != 0 {
		t.Errorf("the handlers wrote %d statuses to GitHub; with a projector they change records only", len(got))
	}
	if !rec.Projected {
		t.Error("the record is not marked projected")
	}
	for _, tr := range rec.Tests {
		if tr.Report == nil || tr.Report.Summary == "" || tr.LogURL == "" || tr.Description == "" {
			t.Errorf("test %s lacks what GitHub shows of it: %+v", tr.Name, tr)
		}
	}

	p, err := projector.New(projector.Options{Records: r.bus.Records(), Clients: projectorClients{tokenGitHub{r.gh}},
		Holder: t.Name(), HTTPRoot: httpRoot})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("projector: %v", err)
		}
	}()
	final := r.waitFinal(t, sha, append(matrix, "yci")...)
	if s := final["yci"]; s.GetState() != "success" || s.GetDescription() != "4 passed (1 flaky) of 4" {
		t.Errorf("summary from the record: %s %q", s.GetState(), s.GetDescription())
	}
	for _, c := range matrix {
		if s := final[c]; s.GetState() != "success" || s.GetTargetURL() == "" {
			t.Errorf("%s from the record: %s %q -> %q", c, s.GetState(), s.GetDescription(), s.GetTargetURL())
		}
	}
}
