package events

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// flakyKV fails each call's first try with err, then succeeds, counting
// tries per method.
type flakyKV struct {
	jetstream.KeyValue
	err   error
	tries map[string]int
}

func (f *flakyKV) try(method string) error {
	f.tries[method]++
	if f.tries[method] == 1 {
		return f.err
	}
	return nil
}

func (f *flakyKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, f.try("Get")
}

func (f *flakyKV) Put(context.Context, string, []byte) (uint64, error) { return 1, f.try("Put") }

func (f *flakyKV) Create(context.Context, string, []byte, ...jetstream.KVCreateOpt) (uint64, error) {
	return 1, f.try("Create")
}

func (f *flakyKV) Update(context.Context, string, []byte, uint64) (uint64, error) {
	return 2, f.try("Update")
}

func (f *flakyKV) Delete(context.Context, string, ...jetstream.KVDeleteOpt) error {
	return f.try("Delete")
}

// A bucket call that reached no server is repeated whatever it is; one
// left unanswered is repeated only when repeating it cannot change the
// outcome (reads, Put), never a compare-and-set write.
func TestElectionProofKV(t *testing.T) {
	t.Parallel()
	s := &store{opts: Options{}.withDefaults()}
	s.log = s.opts.Logger
	calls := map[string]func(jetstream.KeyValue) error{
		"Get":    func(kv jetstream.KeyValue) error { _, err := kv.Get(t.Context(), "k"); return err },
		"Put":    func(kv jetstream.KeyValue) error { _, err := kv.Put(t.Context(), "k", nil); return err },
		"Create": func(kv jetstream.KeyValue) error { _, err := kv.Create(t.Context(), "k", nil); return err },
		"Update": func(kv jetstream.KeyValue) error { _, err := kv.Update(t.Context(), "k", nil, 1); return err },
		"Delete": func(kv jetstream.KeyValue) error { return kv.Delete(t.Context(), "k") },
	}
	cases := []struct {
		name     string
		err      error
		repeated map[string]bool
	}{
		{"no responders", nats.ErrNoResponders, map[string]bool{"Get": true, "Put": true, "Create": true, "Update": true, "Delete": true}},
		{"unanswered", nats.ErrTimeout, map[string]bool{"Get": true, "Put": true}},
		{"conflict", jetstream.ErrKeyExists, map[string]bool{}},
	}
	for _, c := range cases {
		for method, call := range calls {
			t.Run(c.name+"/"+method, func(t *testing.T) {
				t.Parallel()
				f := &flakyKV{err: c.err, tries: map[string]int{}}
				err := call(electionProofKV{KeyValue: f, s: s})
				wantTries := 1
				if c.repeated[method] {
					wantTries = 2
				}
				if f.tries[method] != wantTries {
					t.Errorf("%d tries, want %d", f.tries[method], wantTries)
				}
				if failed := err != nil; failed != (wantTries == 1) || (err != nil && !errors.Is(err, c.err)) {
					t.Errorf("error %v after %d tries (first try failed with %v)", err, f.tries[method], c.err)
				}
			})
		}
	}
}
