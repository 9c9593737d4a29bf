package memregistry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memregistry"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/natsserver/natstest"
)

// registry is every method the fake stands in for: events.Registry's and
// the head records of events.Heads.
type registry interface {
	ClaimBuild(ctx context.Context, repo events.Repo, pull int, sha string, rebuild bool) (int, bool, error)
	ClaimBuildFor(ctx context.Context, repo events.Repo, pull int, sha, claimant string, rebuild bool) (events.Claim, error)
	MarkQueued(ctx context.Context, repo events.Repo, pull int, sha string, build int) error
	BuildOf(ctx context.Context, repo events.Repo, pull int, sha string) (int, bool, error)
	BuildClaim(ctx context.Context, repo events.Repo, pull int, sha string) (int, string, bool, error)
	ApprovalOf(ctx context.Context, repo events.Repo, pull int) (events.Approval, error)
	Approve(ctx context.Context, repo events.Repo, pull int, sha, by string) error
	AskApproval(ctx context.Context, repo events.Repo, pull int, sha string) (bool, error)
	ForgetAsked(ctx context.Context, repo events.Repo, pull int, sha string) error
	ClaimReruns(ctx context.Context, repo events.Repo, pull, build int, tests []string, claimant string) (map[string]int, error)
	RerunsClaimed(ctx context.Context, repo events.Repo, pull, build int, claimant string) (map[string]int, bool, error)
	SeeHead(ctx context.Context, repo events.Repo, pull int, sha string, now time.Time) (time.Time, error)
	ClaimComment(ctx context.Context, repo events.Repo, pull int, comment int64, digest, claimant string) (bool, error)
	AllowReply(ctx context.Context, repo events.Repo, pull int, user, claimant string, now time.Time, every time.Duration) (bool, error)
	RecordHead(ctx context.Context, repo events.Repo, pull int, r events.HeadRecord) (events.HeadRecord, error)
	HeadOf(ctx context.Context, repo events.Repo, pull int) (events.HeadRecord, bool, error)
}

var (
	_ registry = (*memregistry.Registry)(nil)
	_ registry = real{}
)

// real is the registry on a JetStream server.
type real struct {
	*events.Registry
	*events.Heads
}

// implementation is one kind of registry: start readies what its
// registries need for the rest of t and returns how to open an empty one
// for one case.
type implementation struct {
	name  string
	start func(t *testing.T) (open func(t *testing.T) registry)
}

// implementations are the real registry, on the embedded nats-server
// and on the nats-server binary (Debian's 2.9, the oldest supported),
// with a bucket of its own per case, and the fake.
var implementations = []implementation{
	{"embedded", onServer(func(t *testing.T) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := natsserver.Start(ctx, natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Shutdown)
		return s.URL()
	})},
	{"nats-server_binary", onServer(func(t *testing.T) string {
		return natstest.StartExternal(t, natsserver.Options{StoreDir: t.TempDir(), Port: natsserver.RandomPort}).URL()
	})},
	{"memory", func(*testing.T) func(*testing.T) registry {
		return func(*testing.T) registry { return memregistry.New() }
	}},
}

// onServer starts a server with start and opens each case's registry on
// it, in a key-value bucket of the case's own.
func onServer(start func(t *testing.T) string) func(t *testing.T) func(t *testing.T) registry {
	return func(t *testing.T) func(t *testing.T) registry {
		url := start(t)
		cases := 0
		return func(t *testing.T) registry {
			cases++
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			b, err := events.Connect(ctx, url, t.Name(), events.Options{Memory: true,
				Bucket: fmt.Sprintf("registry_%d", cases), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Error(err)
				}
			})
			return real{b.Registry(), b.Heads()}
		}
	}
}

// TestContract makes the same calls of the real registry and of the fake,
// one case after another, and requires the answers each case states of
// both: the fake cannot drift from the real thing unseen.
func TestContract(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			open := impl.start(t)
			for _, tc := range contractCases {
				t.Run(tc.name, func(t *testing.T) {
					r := open(t)
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					for i, s := range tc.steps {
						got, err := s.do(ctx, r)
						if !errors.Is(err, s.wantErr) || (err == nil) != (s.wantErr == nil) {
							t.Fatalf("step %d, %s: error %v, want %v", i+1, s.call, err, s.wantErr)
						}
						if diff := cmp.Diff(s.want, got); err == nil && diff != "" {
							t.Fatalf("step %d, %s: answer differs (-want +got):\n%s", i+1, s.call, diff)
						}
					}
				})
			}
		})
	}
}
