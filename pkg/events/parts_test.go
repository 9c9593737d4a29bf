package events_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/events"
)

func TestQueuedReadsOneSubjectOldestFirstAndConsumesNothing(t *testing.T) {
	eachServer(t, func(t *testing.T, srv testServer) {
		ctx := testContext(t)
		q := newBus(t, srv.URL(), fastOptions(t)).Queue()
		other := events.Repo{Owner: "other", Name: "repo"}
		for n := 1; n <= 3; n++ {
			sha := fmt.Sprintf("%040d", n)
			if err := q.PublishPull(ctx, samplePull(n, sha)); err != nil {
				t.Fatal(err)
			}
			ev := samplePull(n, sha)
			ev.Repo = other
			if err := q.PublishPull(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		read := func(limit int) []int {
			var got []int
			err := q.Queued(ctx, events.PullSubject(sampleRepo), func(subject string, data []byte) bool {
				if subject != events.PullSubject(sampleRepo) {
					t.Errorf("read %s, want only %s", subject, events.PullSubject(sampleRepo))
				}
				var ev events.PullEvent
				if err := json.Unmarshal(data, &ev); err != nil {
					t.Fatal(err)
				}
				got = append(got, ev.Number)
				return len(got) < limit
			})
			if err != nil {
				t.Fatal(err)
			}
			return got
		}

		if got := read(10); !slices.Equal(got, []int{1, 2, 3}) {
			t.Errorf("read %v, want [1 2 3]", got)
		}
		if got := read(2); !slices.Equal(got, []int{1, 2}) {
			t.Errorf("stopping after two read %v, want [1 2]", got)
		}
		if n := streamMsgs(t, newBus(t, srv.URL(), fastOptions(t))); n != 6 {
			t.Errorf("stream holds %d messages after reading, want all 6", n)
		}
	})
}

func TestKeyValueCreatesAndUpdatesABucket(t *testing.T) {
	eachServer(t, func(t *testing.T, srv testServer) {
		ctx := testContext(t)
		b := newBus(t, srv.URL(), fastOptions(t))
		cfg := jetstream.KeyValueConfig{Bucket: "someone_else", History: 1, Storage: jetstream.MemoryStorage}
		kv, err := b.KeyValue(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		cfg.Description = "changed"
		again, err := b.KeyValue(ctx, cfg)
		if err != nil {
			t.Fatalf("updating the bucket: %v", err)
		}
		e, err := again.Get(ctx, "k")
		if err != nil || string(e.Value()) != "v" {
			t.Fatalf("after the update, k = %v, %v; want the value kept", e, err)
		}
		status, err := again.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := status.Config().Description; got != "changed" {
			t.Errorf("after the update, the description is %q, want %q", got, "changed")
		}
		if _, err := b.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "no spaces allowed"}); err == nil {
			t.Error("a bucket with an invalid name was created")
		}
	})
}
