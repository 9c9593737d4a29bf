package events

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/natsserver/natstest"
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
		// An Update of a revision is tried again even unanswered: see
		// TestUpdateTellsItsOwnTryFromARivals.
		"Create_by_Update": func(kv jetstream.KeyValue) error { _, err := kv.Update(t.Context(), "k", nil, 0); return err },
		"Delete":           func(kv jetstream.KeyValue) error { return kv.Delete(t.Context(), "k") },
	}
	cases := []struct {
		name     string
		err      error
		repeated map[string]bool
	}{
		{"no responders", nats.ErrNoResponders, map[string]bool{"Get": true, "Put": true, "Create": true, "Create_by_Update": true, "Delete": true}},
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
				tries := f.tries[strings.TrimPrefix(method, "Create_by_")]
				if tries != wantTries {
					t.Errorf("%d tries, want %d", tries, wantTries)
				}
				if failed := err != nil; failed != (wantTries == 1) || (err != nil && !errors.Is(err, c.err)) {
					t.Errorf("error %v after %d tries (first try failed with %v)", err, tries, c.err)
				}
			})
		}
	}
}

// An Update carries a message id made of its key and the revision it is
// based on, so a second write based on the same revision is answered as a
// duplicate. Update tells a repeat of its own try, stored with its answer
// lost, from a rival's write: only the first is its success. Run on the
// embedded server and on Debian's nats-server.
func TestUpdateTellsItsOwnTryFromARivals(t *testing.T) {
	t.Parallel()
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			kv := recordsKV(t, start(t))
			tests := []struct {
				name string
				// repeat is the second write based on the first's revision:
				// its value, and whether an earlier try of it may be stored.
				repeat      string
				mayBeStored bool
				// replaced: the first write is itself replaced before the
				// repeat.
				replaced bool
				// want is the errors the repeat may wrap, none when it
				// returns the first's revision.
				want []error
			}{
				{name: "own_repeat_after_a_lost_answer_is_success", repeat: "mine", mayBeStored: true},
				{name: "a_first_try_answered_duplicate_is_a_conflict", repeat: "mine", want: []error{jetstream.ErrKeyRevisionMismatch}},
				// A server that checks the revision before the message id
				// only says the key moved on: not a success either way.
				{name: "a_rivals_value_is_no_success", repeat: "rival", mayBeStored: true, want: []error{jetstream.ErrKeyRevisionMismatch, errUpdateUnknown}},
				{name: "a_replaced_write_cannot_be_told", repeat: "mine", mayBeStored: true, replaced: true, want: []error{errUpdateUnknown}},
			}
			for _, tt := range tests {
				key := "k." + tt.name
				base, err := kv.Put(t.Context(), key, []byte("base"))
				if err != nil {
					t.Fatal(err)
				}
				first, err := kv.update(t.Context(), key, []byte("mine"), base, false)
				if err != nil {
					t.Fatalf("%s: first write: %v", tt.name, err)
				}
				if tt.replaced {
					if _, err := kv.Update(t.Context(), key, []byte("later"), first); err != nil {
						t.Fatalf("%s: replacing the first write: %v", tt.name, err)
					}
				}
				got, err := kv.update(t.Context(), key, []byte(tt.repeat), base, tt.mayBeStored)
				switch {
				case tt.want == nil && (err != nil || got != first):
					t.Errorf("%s: repeat = %d, %v; want %d, nil", tt.name, got, err, first)
				case tt.want != nil && !slices.ContainsFunc(tt.want, func(w error) bool { return errors.Is(err, w) }):
					t.Errorf("%s: repeat = %d, %v; want an error wrapping one of %v", tt.name, got, err, tt.want)
				}
			}
		})
	}
}

// servers start a server of each kind the buckets run on, the embedded
// one and Debian's nats-server, and return its address.
var servers = map[string]func(t *testing.T) string{
	"embedded": func(t *testing.T) string {
		srv, err := natsserver.Start(t.Context(), natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		return srv.URL()
	},
	"nats-server_binary": func(t *testing.T) string {
		return natstest.StartExternal(t, natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort}).URL()
	},
}

// recordsKV is the record bucket of a bus on the server at url, as its
// users get it.
func recordsKV(t *testing.T, url string) electionProofKV {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	b, err := New(t.Context(), nc, Options{Memory: true, PublishOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return b.records.(electionProofKV)
}

// A read from the stream's leader, as replicated buckets read, tells what
// the bucket's own read tells: the latest value and revision of a key,
// and "not found" for a key never written, deleted or purged. Run on the
// embedded server and on Debian's nats-server.
func TestLeaderGetReadsAsTheBucketDoes(t *testing.T) {
	t.Parallel()
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			kv := recordsKV(t, start(t))
			ctx := t.Context()
			for _, put := range []struct{ key, value string }{{"a.b", "one"}, {"a.b", "two"}, {"gone", "x"}, {"purged", "y"}} {
				if _, err := kv.Put(ctx, put.key, []byte(put.value)); err != nil {
					t.Fatal(err)
				}
			}
			if err := kv.Delete(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
			if err := kv.Purge(ctx, "purged"); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"a.b", "gone", "purged", "never"} {
				t.Run(key, func(t *testing.T) {
					want, wantErr := kv.KeyValue.Get(ctx, key)
					got, err := kv.latest(ctx, key)
					if !errors.Is(err, jetstream.ErrKeyNotFound) && err != nil || (err == nil) != (wantErr == nil) {
						t.Fatalf("latest(%q) = %v; the bucket's read: %v", key, err, wantErr)
					}
					if err != nil {
						if !errors.Is(err, jetstream.ErrKeyNotFound) {
							t.Errorf("latest(%q) = %v; want ErrKeyNotFound", key, err)
						}
						return
					}
					if string(got.Value()) != string(want.Value()) || got.Revision() != want.Revision() ||
						got.Key() != want.Key() || got.Bucket() != want.Bucket() || !got.Created().Equal(want.Created()) {
						t.Errorf("latest(%q) = %s@%d %s/%s %v; the bucket's read: %s@%d %s/%s %v", key,
							got.Value(), got.Revision(), got.Bucket(), got.Key(), got.Created(),
							want.Value(), want.Revision(), want.Bucket(), want.Key(), want.Created())
					}
				})
			}
		})
	}
}

// leaderlessKV answers the first leaderless tries of every call "no
// leader" (err_code 10008), as a bucket whose leader died does until the
// survivors elect one; then reads find nothing and writes are stored.
type leaderlessKV struct {
	jetstream.KeyValue
	leaderless int
	tries      map[string]int
}

func (f *leaderlessKV) try(method string) error {
	f.tries[method]++
	if f.tries[method] <= f.leaderless {
		return apiErrNotAvail
	}
	return nil
}

func (f *leaderlessKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	if err := f.try("Get"); err != nil {
		return nil, err
	}
	return nil, jetstream.ErrKeyNotFound
}

func (f *leaderlessKV) Put(context.Context, string, []byte) (uint64, error) { return 1, f.try("Put") }

func (f *leaderlessKV) Create(context.Context, string, []byte, ...jetstream.KVCreateOpt) (uint64, error) {
	return 1, f.try("Create")
}

func (f *leaderlessKV) Delete(context.Context, string, ...jetstream.KVDeleteOpt) error {
	return f.try("Delete")
}

// The Bus's own reads and writes of its buckets wait for an election far
// longer than Options.Timeout, which bounds a call a server answers: a
// claim wrapped in that shorter bound gave up after 10 s while a loaded
// cluster elected the bucket's leader (issue 17).
func TestBucketCallsOutlastTimeoutDuringElection(t *testing.T) {
	t.Parallel()
	const leaderless = 3 // 50+100+200 ms of backoff, far past Timeout
	calls := map[string]func(context.Context, *store) error{
		"loadJSON": func(ctx context.Context, s *store) error {
			var v map[string]any
			_, err := s.loadJSON(ctx, "k", &v)
			return err
		},
		"storeJSON": func(ctx context.Context, s *store) error { return s.storeJSON(ctx, "k", 1, 0) },
		"getEntry": func(ctx context.Context, s *store) error {
			if _, err := s.getEntry(ctx, "k", ErrNoRecord); !errors.Is(err, ErrNoRecord) {
				return err
			}
			return nil
		},
		"putJSON": func(ctx context.Context, s *store) error { _, err := s.putJSON(ctx, "k", 1, 0); return err },
		"MarkRunning": func(ctx context.Context, s *store) error {
			done, err := (&Attempts{s}).MarkRunning(ctx, RunningAttempt{Repo: Repo{Owner: "o", Name: "r"}, Number: 1, Build: 1, Test: "t", Attempt: 1})
			done()
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			kv := &leaderlessKV{leaderless: leaderless, tries: map[string]int{}}
			s := &store{opts: Options{Timeout: time.Millisecond, ElectionWait: time.Minute}.withDefaults()}
			s.log = s.opts.Logger
			s.kv, s.records, s.running = electionProofKV{kv, s}, electionProofKV{kv, s}, electionProofKV{kv, s}
			if err := call(t.Context(), s); err != nil {
				t.Fatalf("%s during an election longer than Timeout: %v (tries %v)", name, err, kv.tries)
			}
			for method, n := range kv.tries {
				if n != leaderless+1 {
					t.Errorf("%s: %d tries, want %d", method, n, leaderless+1)
				}
			}
		})
	}
}
