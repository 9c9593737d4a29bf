package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

func TestBuildRecord(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		ctx := testContext(t)
		// Two connections stand for two boxes sharing the server.
		boxes := []*events.Bus{newBus(t, srv.URL(), fastOptions(t)), newBus(t, srv.URL(), fastOptions(t))}
		repo := events.Repo{Owner: "o", Name: "r.go"}
		key := events.BuildKey{Repo: repo, Pull: 7, Build: 2}

		t.Run("concurrent_updates_from_two_boxes_all_land", func(t *testing.T) {
			const perBox = 15
			var wg sync.WaitGroup
			errs := make(chan error, 2*perBox)
			for i, bus := range boxes {
				for j := range perBox {
					name := fmt.Sprintf("t%d-%d", i, j)
					wg.Go(func() {
						_, err := bus.UpdateBuild(ctx, key, func(r *events.BuildRecord) error {
							r.SHA = "abc"
							tr := r.AddTest(name)
							tr.State = events.TestRunning
							tr.Attempts = append(tr.Attempts, events.AttemptRecord{Number: 1, Start: time.Now()})
							return nil
						})
						errs <- err
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			rec, err := boxes[1].BuildRecord(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Tests) != 2*perBox {
				t.Fatalf("%d tests in the record, want %d: an update was lost", len(rec.Tests), 2*perBox)
			}
			for _, tr := range rec.Tests {
				if tr.State != events.TestRunning || len(tr.Attempts) != 1 {
					t.Errorf("test %s: %s with %d attempts, want running with 1", tr.Name, tr.State, len(tr.Attempts))
				}
			}
			if rec.Key != key || rec.SHA != "abc" || rec.Revision == 0 || rec.Created.IsZero() {
				t.Errorf("record %+v lacks its key, sha, revision or creation time", rec)
			}
		})

		t.Run("a_failing_change_stores_nothing", func(t *testing.T) {
			before, err := boxes[0].BuildRecord(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			boom := errors.New("boom")
			_, err = boxes[0].UpdateBuild(ctx, key, func(r *events.BuildRecord) error {
				r.Tests = nil
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("UpdateBuild returned %v, want the change's error", err)
			}
			after, err := boxes[0].BuildRecord(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if after.Revision != before.Revision || len(after.Tests) != len(before.Tests) {
				t.Errorf("revision %d -> %d, tests %d -> %d: a failed change was stored",
					before.Revision, after.Revision, len(before.Tests), len(after.Tests))
			}
		})

		t.Run("missing_record_is_ErrNoRecord", func(t *testing.T) {
			_, err := boxes[0].BuildRecord(ctx, events.BuildKey{Repo: repo, Pull: 7, Build: 99})
			if !errors.Is(err, events.ErrNoRecord) {
				t.Errorf("got %v, want ErrNoRecord", err)
			}
		})

		t.Run("invalid_key_is_refused", func(t *testing.T) {
			_, err := boxes[0].UpdateBuild(ctx, events.BuildKey{Repo: repo}, func(*events.BuildRecord) error { return nil })
			if !errors.Is(err, events.ErrInvalidEvent) {
				t.Errorf("got %v, want ErrInvalidEvent", err)
			}
		})

		t.Run("recent_builds_are_the_repository's_newest_first", func(t *testing.T) {
			other := events.Repo{Owner: "o", Name: "r"} // a prefix of r.go's encoded name
			for _, k := range []events.BuildKey{
				{Repo: repo, Pull: 8, Build: 1}, {Repo: other, Pull: 1, Build: 1}, {Repo: repo, Pull: 7, Build: 3},
			} {
				if _, err := boxes[0].UpdateBuild(ctx, k, func(r *events.BuildRecord) error { r.SHA = "x"; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			recs, err := boxes[1].RecentBuilds(ctx, repo, 2)
			if err != nil {
				t.Fatal(err)
			}
			var got []events.BuildKey
			for _, r := range recs {
				got = append(got, r.Key)
			}
			want := []events.BuildKey{{Repo: repo, Pull: 7, Build: 3}, {Repo: repo, Pull: 8, Build: 1}}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("recent builds %v, want %v", got, want)
			}
			none, err := boxes[1].RecentBuilds(ctx, events.Repo{Owner: "nobody", Name: "x"}, 5)
			if err != nil || len(none) != 0 {
				t.Errorf("builds of an unknown repository: %v, %v; want none", none, err)
			}
		})
	})
}

// BenchmarkUpdateBuild is one test's change of state in the record of a
// 20-test build: read, change, compare-and-set, on file storage.
func BenchmarkUpdateBuild(b *testing.B) {
	bus := benchBus(b)
	ctx := context.Background()
	key := events.BuildKey{Repo: events.Repo{Owner: "o", Name: "r"}, Pull: 1, Build: 1}
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("t%d", i%20)
		i++
		_, err := bus.UpdateBuild(ctx, key, func(r *events.BuildRecord) error {
			t := r.AddTest(name)
			t.Attempts = append(t.Attempts[:min(len(t.Attempts), 2)], events.AttemptRecord{Number: len(t.Attempts) + 1})
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
