package events_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/yourci/yourci/pkg/events"
)

func TestHeadSummarySet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		h           events.HeadSummary
		build       int
		wantSet     bool
		wantVisible bool
	}{
		{"a new head shows what it is told", events.HeadSummary{}, 0, true, true},
		{"a later word replaces an earlier one before any build", events.HeadSummary{State: "pending", Description: "needs approval"}, 0, true, true},
		{"a word about a claimed build before it took over shows", events.HeadSummary{State: "pending"}, 3, true, true},
		{"once a build took over, a word from before any claim changes nothing", events.HeadSummary{TakenBy: 1}, 0, false, false},
		{"nor does one about the build that took over", events.HeadSummary{TakenBy: 2}, 2, false, false},
		{"one about a newer build (a rebuild failing to prepare) shows again", events.HeadSummary{TakenBy: 2}, 3, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.h
			if got := h.Set(tc.build, "pending", "preparing failed", "https://ci.example/log"); got != tc.wantSet {
				t.Errorf("Set = %v, want %v", got, tc.wantSet)
			}
			if got := h.Visible(); got != tc.wantVisible {
				t.Errorf("Visible = %v, want %v (%+v)", got, tc.wantVisible, h)
			}
			if !tc.wantSet && h != tc.h {
				t.Errorf("a refused Set changed the summary: %+v", h)
			}
		})
	}
}

func TestHeadSummaryTakeOver(t *testing.T) {
	t.Parallel()
	h := events.HeadSummary{State: "pending", Description: "approved by maint; building"}
	if !h.TakeOver(1) || h.Visible() {
		t.Fatalf("build 1 did not take over: %+v", h)
	}
	if h.TakeOver(1) {
		t.Error("taking over again changed the summary")
	}
	if h.Set(1, "error", "gave up", "") || h.Visible() {
		t.Errorf("a late word about build 1 shows after it took over: %+v", h)
	}
	if !h.TakeOver(2) || h.TakenBy != 2 {
		t.Errorf("a later build did not take over: %+v", h)
	}
}

// TestHeadSummariesInTheRecordBucket stores, changes and watches head
// summaries on each server we support, beside build records that must
// not see them.
func TestHeadSummariesInTheRecordBucket(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		ctx := testContext(t)
		writer, other := newBus(t, srv.URL(), fastOptions(t)), newBus(t, srv.URL(), fastOptions(t))
		k := events.HeadKey{Repo: events.Repo{Owner: "o", Name: "r"}, Pull: 3, SHA: strings.Repeat("a", 40)}
		if _, err := writer.Records().HeadSummary(ctx, k); !errors.Is(err, events.ErrNoHeadSummary) {
			t.Fatalf("HeadSummary of a new head = %v, want ErrNoHeadSummary", err)
		}
		seen := make(chan events.HeadSummary, 16)
		wctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- other.Records().WatchHeadSummaries(wctx, func(h events.HeadSummary) { seen <- h }) }()

		// Two boxes change it at once: compare-and-set keeps both.
		var wg sync.WaitGroup
		for _, b := range []*events.Bus{writer, other} {
			wg.Go(func() {
				_, err := b.Records().UpdateHeadSummary(ctx, k, func(h *events.HeadSummary) error {
					if b == writer {
						h.Set(0, "pending", "needs approval", "")
					} else {
						h.Approved = true
					}
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, err := writer.Records().HeadSummary(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if got.Key() != k || got.State != "pending" || got.Description != "needs approval" || !got.Approved || got.Revision == 0 {
			t.Errorf("after both changes: %+v", got)
		}
		if _, err := writer.Records().UpdateHeadSummary(ctx, k, func(*events.HeadSummary) error { return events.ErrUnchanged }); !errors.Is(err, events.ErrUnchanged) {
			t.Errorf("an unchanged summary: err %v, want ErrUnchanged", err)
		}
		for {
			select {
			case h := <-seen:
				if h.Revision < got.Revision {
					continue // the first change, replaced since
				}
				if h.Key() != k || h.Description != "needs approval" || !h.Approved {
					t.Errorf("watched %+v", h)
				}
			case <-ctx.Done():
				t.Fatalf("the watch never delivered revision %d", got.Revision)
			}
			break
		}
		if recs, err := writer.Records().RecentBuilds(ctx, k.Repo, 10); err != nil || len(recs) != 0 {
			t.Errorf("RecentBuilds = %d records, %v: head summaries are no builds", len(recs), err)
		}
		if _, err := writer.Records().UpdateHeadSummary(ctx, events.HeadKey{Repo: k.Repo, Pull: 3, SHA: "abc"}, nil); !errors.Is(err, events.ErrInvalidEvent) {
			t.Errorf("a head with a short sha: err %v, want ErrInvalidEvent", err)
		}
		stop()
		if err := <-done; err != nil {
			t.Errorf("WatchHeadSummaries returned %v, want nil", err)
		}
	})
}
