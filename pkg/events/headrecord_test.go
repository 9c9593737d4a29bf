package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/natsserver"
)

func TestHeadRecordMerge(t *testing.T) {
	t.Parallel()
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	t0 := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	at := func(sha string, d time.Duration) events.HeadRecord {
		return events.HeadRecord{SHA: sha, UpdatedAt: t0.Add(d)}
	}
	closed := func(r events.HeadRecord) events.HeadRecord { r.Closed = true; return r }
	read := func(r events.HeadRecord) events.HeadRecord { r.Read = true; return r }
	ambiguous := func(r events.HeadRecord) events.HeadRecord { r.Ambiguous = true; return r }
	cases := []struct {
		name        string
		cur         events.HeadRecord
		found       bool
		report      events.HeadRecord
		want        events.HeadRecord
		wantChanged bool
	}{
		{"first report is taken", events.HeadRecord{}, false, at(a, 0), at(a, 0), true},
		{"a later second replaces the head", at(a, 0), true, at(b, time.Second), at(b, time.Second), true},
		{"an older delivery arriving late does not win", at(b, time.Second), true, at(a, 0), at(b, time.Second), false},
		{"the same report again changes nothing", at(a, 0), true, at(a, 0), at(a, 0), false},
		{"another head in the same second is ambiguous", at(a, 0), true, at(b, 500*time.Millisecond), ambiguous(at(a, 0)), true},
		{"a close in the same second as the head is ambiguous", at(a, 0), true, closed(at(a, 0)), ambiguous(at(a, 0)), true},
		{"a later close wins", at(a, 0), true, closed(at(a, time.Minute)), closed(at(a, time.Minute)), true},
		{"a reopen after the close wins", closed(at(a, 0)), true, at(a, time.Second), at(a, time.Second), true},
		{"an API read settles an ambiguous second", ambiguous(at(a, 0)), true, read(at(b, 0)), read(at(b, 0)), true},
		{"a later second settles an ambiguous one", ambiguous(at(a, 0)), true, at(b, time.Second), at(b, time.Second), true},
		{"a delivery disagreeing with a read of its second is ambiguous again", read(at(b, 0)), true, at(a, 0), ambiguous(at(b, 0)), true},
		{"a report cannot claim to be ambiguous", events.HeadRecord{}, false, ambiguous(at(a, 0)), at(a, 0), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := tc.cur.Merge(tc.found, tc.report)
			if !got.UpdatedAt.Equal(tc.want.UpdatedAt) || got.SHA != tc.want.SHA || got.Closed != tc.want.Closed ||
				got.Ambiguous != tc.want.Ambiguous || got.Read != tc.want.Read || changed != tc.wantChanged {
				t.Errorf("Merge = %+v, %v; want %+v, %v", got, changed, tc.want, tc.wantChanged)
			}
		})
	}
}

func TestHeadRecordsAcrossBoxes(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		receiver, worker := newBus(t, srv.URL(), opts).Heads(), newBus(t, srv.URL(), opts).Heads()
		ctx := testContext(t)
		repo := events.Repo{Owner: "my_org", Name: "widgets"}
		a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
		t0 := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)

		if _, ok, err := worker.HeadOf(ctx, repo, 7); ok || err != nil {
			t.Fatalf("HeadOf before any report = %v, %v; want none", ok, err)
		}
		steps := []struct {
			report    events.HeadRecord
			wantSHA   string
			ambiguous bool
		}{
			{events.HeadRecord{SHA: a, UpdatedAt: t0}, a, false},
			{events.HeadRecord{SHA: b, UpdatedAt: t0.Add(2 * time.Second)}, b, false},
			{events.HeadRecord{SHA: a, UpdatedAt: t0.Add(time.Second)}, b, false},
			{events.HeadRecord{SHA: a, UpdatedAt: t0.Add(2 * time.Second)}, b, true},
		}
		for i, s := range steps {
			if _, err := receiver.RecordHead(ctx, repo, 7, s.report); err != nil {
				t.Fatalf("step %d: RecordHead: %v", i, err)
			}
			got, ok, err := worker.HeadOf(ctx, repo, 7)
			if err != nil || !ok || got.SHA != s.wantSHA || got.Ambiguous != s.ambiguous {
				t.Fatalf("step %d: HeadOf on another box = %+v, %v, %v; want %.7s ambiguous=%v", i, got, ok, err, s.wantSHA, s.ambiguous)
			}
		}
		if _, err := receiver.RecordHead(ctx, repo, 7, events.HeadRecord{SHA: a}); !errors.Is(err, events.ErrInvalidEvent) {
			t.Errorf("RecordHead without updated_at = %v; want ErrInvalidEvent", err)
		}
		if _, err := receiver.RecordHead(ctx, repo, 7, events.HeadRecord{SHA: "../x", UpdatedAt: t0}); err == nil {
			t.Error("RecordHead took a head that is no sha")
		}
	})
}

func TestPublishPullRefusesAnOversizedPull(t *testing.T) {
	t.Parallel()
	srv := serverKinds[0].start(t, t.TempDir(), natsserver.RandomPort)
	q := newBus(t, srv.URL(), fastOptions(t)).Queue()
	ev := samplePull(1, strings.Repeat("c", 40))
	big, err := json.Marshal(map[string]string{"body": strings.Repeat("x", events.MaxPullLen)})
	if err != nil {
		t.Fatal(err)
	}
	ev.Pull = big
	if err := q.PublishPull(testContext(t), ev); !errors.Is(err, events.ErrInvalidEvent) {
		t.Errorf("PublishPull of a %d-byte pull = %v; want ErrInvalidEvent", len(big), err)
	}
	ev.Pull = json.RawMessage(`{"number":1}`)
	if err := q.PublishPull(testContext(t), ev); err != nil {
		t.Errorf("PublishPull of a small pull: %v", err)
	}
}
