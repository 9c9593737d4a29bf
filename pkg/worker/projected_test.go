package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/projector"
)

// projectorClients is projector.Clients for the rig's GitHub stand-in:
// check runs when the installation has them (App auth), else statuses.
type projectorClients struct{ gh GitHub }

func (c projectorClients) Client(ctx context.Context, id int64) (projector.Client, error) {
	gh := c.gh
	if nw, ok := gh.(noWrites); ok {
		gh = nw.GitHub
	}
	inst, err := gh.Installation(ctx, id)
	if err != nil {
		return projector.Client{}, err
	}
	return projector.Client{Statuses: inst.Statuses, Checks: inst.Checks}, nil
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

// noWrites is the worker's view of GitHub with every writer taken away:
// a status written through it fails the test. The rig's projector writes
// through the GitHub it wraps.
type noWrites struct {
	GitHub
	t *testing.T
}

func (n noWrites) Installation(ctx context.Context, id int64) (Installation, error) {
	inst, err := n.GitHub.Installation(ctx, id)
	inst.Statuses, inst.Checks = refusedStatuses{n.t}, nil
	return inst, err
}

// refusedStatuses fails the test at any status write.
type refusedStatuses struct{ t *testing.T }

func (r refusedStatuses) CreateStatus(_ context.Context, owner, repo, ref string, s github.RepoStatus) (*github.RepoStatus, *github.Response, error) {
	r.t.Errorf("a handler wrote %s %q on %s/%s@%s; only the projector may", s.GetContext(), s.GetState(), owner, repo, ref)
	return nil, nil, errors.New("handlers write no statuses")
}

func withNoWrites(t *testing.T) func(*Options) {
	return func(o *Options) { o.GitHub = noWrites{o.GitHub, t} }
}

// TestWorkerChangesOnlyRecords runs a build on a worker that cannot write
// GitHub: its handlers change records only, the records carry every final
// state with what GitHub shows of it, and the projector shows it all.
func TestWorkerChangesOnlyRecords(t *testing.T) {
	t.Parallel()
	r := newRig(t, withNoWrites(t))
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
