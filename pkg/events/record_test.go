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
						_, err := bus.Records().UpdateBuild(ctx, key, func(r *events.BuildRecord) error {
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
			rec, err := boxes[1].Records().BuildRecord(ctx, key)
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
			before, err := boxes[0].Records().BuildRecord(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			boom := errors.New("boom")
			_, err = boxes[0].Records().UpdateBuild(ctx, key, func(r *events.BuildRecord) error {
				r.Tests = nil
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("UpdateBuild returned %v, want the change's error", err)
			}
			after, err := boxes[0].Records().BuildRecord(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if after.Revision != before.Revision || len(after.Tests) != len(before.Tests) {
				t.Errorf("revision %d -> %d, tests %d -> %d: a failed change was stored",
					before.Revision, after.Revision, len(before.Tests), len(after.Tests))
			}
		})

		t.Run("missing_record_is_ErrNoRecord", func(t *testing.T) {
			_, err := boxes[0].Records().BuildRecord(ctx, events.BuildKey{Repo: repo, Pull: 7, Build: 99})
			if !errors.Is(err, events.ErrNoRecord) {
				t.Errorf("got %v, want ErrNoRecord", err)
			}
		})

		t.Run("invalid_key_is_refused", func(t *testing.T) {
			_, err := boxes[0].Records().UpdateBuild(ctx, events.BuildKey{Repo: repo}, func(*events.BuildRecord) error { return nil })
			if !errors.Is(err, events.ErrInvalidEvent) {
				t.Errorf("got %v, want ErrInvalidEvent", err)
			}
		})

		t.Run("recent_builds_are_the_repository's_newest_first", func(t *testing.T) {
			other := events.Repo{Owner: "o", Name: "r"} // a prefix of r.go's encoded name
			for _, k := range []events.BuildKey{
				{Repo: repo, Pull: 8, Build: 1}, {Repo: other, Pull: 1, Build: 1}, {Repo: repo, Pull: 7, Build: 3},
			} {
				if _, err := boxes[0].Records().UpdateBuild(ctx, k, func(r *events.BuildRecord) error { r.SHA = "x"; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			recs, err := boxes[1].Records().RecentBuilds(ctx, repo, 2)
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
			none, err := boxes[1].Records().RecentBuilds(ctx, events.Repo{Owner: "nobody", Name: "x"}, 5)
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
		_, err := bus.Records().UpdateBuild(ctx, key, func(r *events.BuildRecord) error {
			t := r.AddTest(name)
			t.Attempts = append(t.Attempts[:min(len(t.Attempts), 2)], events.AttemptRecord{Number: len(t.Attempts) + 1})
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func TestWatchBuilds(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		ctx := testContext(t)
		writer, watcher := newBus(t, srv.URL(), fastOptions(t)), newBus(t, srv.URL(), fastOptions(t))
		repo := events.Repo{Owner: "o", Name: "r"}
		before := events.BuildKey{Repo: repo, Pull: 1, Build: 1}
		if _, err := writer.Records().UpdateBuild(ctx, before, func(r *events.BuildRecord) error { r.SHA = "old"; return nil }); err != nil {
			t.Fatal(err)
		}
		seen := make(chan events.BuildRecord, 16)
		wctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- watcher.Records().WatchBuilds(wctx, func(r events.BuildRecord) { seen <- r }) }()
		next := func(what string) events.BuildRecord {
			t.Helper()
			select {
			case r := <-seen:
				return r
			case <-ctx.Done():
				t.Fatalf("waiting for %s: %v", what, ctx.Err())
				return events.BuildRecord{}
			}
		}

		t.Run("stored_records_come_first", func(t *testing.T) {
			if r := next("the stored record"); r.Key != before || r.SHA != "old" || r.Revision == 0 {
				t.Errorf("first record %+v, want %v at sha old", r, before)
			}
		})
		t.Run("new_revisions_follow_in_order_the_latest_always", func(t *testing.T) {
			k := events.BuildKey{Repo: repo, Pull: 2, Build: 1}
			var revs []uint64
			for _, sha := range []string{"a", "b"} {
				rec, err := writer.Records().UpdateBuild(ctx, k, func(r *events.BuildRecord) error { r.SHA = sha; return nil })
				if err != nil {
					t.Fatal(err)
				}
				revs = append(revs, rec.Revision)
			}
			// The bucket keeps one revision per key, so a watcher the
			// server has not yet sent "a" to when "b" replaces it never
			// sees "a" (it happens under load). It must see "b".
			r := next("a revision")
			if r.Key == k && r.SHA == "a" && r.Revision == revs[0] {
				r = next("revision b")
			}
			if r.Key != k || r.SHA != "b" || r.Revision != revs[1] {
				t.Errorf("got %v sha %q rev %d, want %v sha %q rev %d", r.Key, r.SHA, r.Revision, k, "b", revs[1])
			}
		})
		t.Run("stops_with_its_context", func(t *testing.T) {
			stop()
			if err := <-done; err != nil {
				t.Errorf("WatchBuilds returned %v, want nil", err)
			}
		})
	})
}

func TestSetPullClosed(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		ctx := testContext(t)
		bus := newBus(t, srv.URL(), fastOptions(t))
		repo := events.Repo{Owner: "o", Name: "r"}
		keys := []events.BuildKey{{Repo: repo, Pull: 3, Build: 1}, {Repo: repo, Pull: 3, Build: 2}, {Repo: repo, Pull: 31, Build: 1}}
		for _, k := range keys {
			if _, err := bus.Records().UpdateBuild(ctx, k, func(r *events.BuildRecord) error { r.SHA = "x"; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		closedOf := func() []bool {
			var out []bool
			for _, k := range keys {
				rec, err := bus.Records().BuildRecord(ctx, k)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, rec.Closed)
			}
			return out
		}
		steps := []struct {
			name    string
			closed  bool
			changed int
			want    []bool
		}{
			{"closing_marks_every_build_of_that_pull_only", true, 2, []bool{true, true, false}},
			{"closing_again_writes_nothing", true, 0, []bool{true, true, false}},
			{"reopening_clears_the_mark", false, 2, []bool{false, false, false}},
		}
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				n, err := bus.Records().SetPullClosed(ctx, repo, 3, s.closed)
				if err != nil || n != s.changed {
					t.Errorf("SetPullClosed = %d, %v; want %d changed", n, err, s.changed)
				}
				if got := closedOf(); fmt.Sprint(got) != fmt.Sprint(s.want) {
					t.Errorf("closed marks %v, want %v", got, s.want)
				}
			})
		}
		t.Run("invalid_pull_is_refused", func(t *testing.T) {
			if _, err := bus.Records().SetPullClosed(ctx, repo, 0, true); !errors.Is(err, events.ErrInvalidEvent) {
				t.Errorf("got %v, want ErrInvalidEvent", err)
			}
		})
	})
}

// Records expire RecordTTL after their last change, on every server we
// support (the bucket's MaxAge).
func TestBuildRecordsExpire(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		ctx := testContext(t)
		opts := fastOptions(t)
		opts.RecordTTL = time.Second
		bus := newBus(t, srv.URL(), opts)
		k := events.BuildKey{Repo: events.Repo{Owner: "o", Name: "r"}, Pull: 1, Build: 1}
		if _, err := bus.Records().UpdateBuild(ctx, k, func(r *events.BuildRecord) error { r.SHA = "x"; return nil }); err != nil {
			t.Fatal(err)
		}
		for {
			_, err := bus.Records().BuildRecord(ctx, k)
			if errors.Is(err, events.ErrNoRecord) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-ctx.Done():
				t.Fatal("the record never expired")
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}
