package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
	"github.com/yourci/yourci/pkg/events/memregistry"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// The fakes below stand in for GitHub and the queue in memory, so that
// what the worker decides for a pull event is tested without NATS, git or
// python; the rig in worker_test.go keeps testing the real wiring.

// fakePulls answers GET pulls/{n} from pulls, or with status (404, 500)
// when set.
type fakePulls struct {
	pull   *github.PullRequest
	status int
	mu     sync.Mutex
	reads  int
}

// readCount is how many times the pull request was read.
func (f *fakePulls) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fakePulls) NewRequest(ctx context.Context, method, urlStr string, _ any, _ ...github.RequestOption) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, method, "https://api.github.invalid/"+urlStr, nil)
}

func (f *fakePulls) Do(req *http.Request, v any) (*github.Response, error) {
	f.mu.Lock()
	f.reads++
	f.mu.Unlock()
	if f.status != 0 {
		resp := &http.Response{StatusCode: f.status, Request: req}
		return &github.Response{Response: resp}, &github.ErrorResponse{Response: resp, Message: http.StatusText(f.status)}
	}
	data, err := json.Marshal(f.pull)
	if err != nil {
		return nil, err
	}
	if _, err := v.(io.Writer).Write(data); err != nil {
		return nil, err
	}
	return &github.Response{Response: &http.Response{StatusCode: http.StatusOK, Request: req}}, nil
}

// fakePermissions gives every user the same permission.
type fakePermissions struct{ level string }

func (f fakePermissions) GetPermissionLevel(context.Context, string, string, string) (*github.RepositoryPermissionLevel, *github.Response, error) {
	return &github.RepositoryPermissionLevel{Permission: github.Ptr(f.level)}, &github.Response{Response: &http.Response{StatusCode: http.StatusOK}}, nil
}

// fakeGitHub hands out inst, or fails with err.
type fakeGitHub struct {
	inst Installation
	err  error
}

func (f fakeGitHub) Installation(context.Context, int64) (Installation, error) { return f.inst, f.err }

// fakeQueue is worker.Queue in memory: its registry is memregistry's
// state-based fake (build claims, approvals, head records, sightings),
// and it keeps the test jobs published and the heads announced.
type fakeQueue struct {
	*memregistry.Registry
	mu        sync.Mutex
	jobs      []events.TestJob
	announced []events.HeadAnnouncement
	// claimsAsked counts ClaimBuildFor calls.
	claimsAsked atomic.Int32
}

func newFakeQueue() *fakeQueue { return &fakeQueue{Registry: memregistry.New()} }

// ClaimBuildFor claims as the registry does, counting the claims asked
// in claimsAsked: whether a pull event went on to claim a head already
// built elsewhere is the point of some tests, and such a claim changes
// no state they could read.
func (q *fakeQueue) ClaimBuildFor(ctx context.Context, repo events.Repo, pull int, sha, claimant string, rebuild bool) (events.Claim, error) {
	q.claimsAsked.Add(1)
	return q.Registry.ClaimBuildFor(ctx, repo, pull, sha, claimant, rebuild)
}

func (q *fakeQueue) PublishTest(_ context.Context, job events.TestJob) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(q.jobs, job)
	return nil
}

func (q *fakeQueue) AnnounceHead(a events.HeadAnnouncement) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.announced = append(q.announced, a)
	return nil
}

// announcedHeads is how many head announcements were made.
func (q *fakeQueue) announcedHeads() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.announced)
}

// builtElsewhere is the claimant of a head's build made before the
// event under test arrived, by another delivery.
const builtElsewhere = "pull/acme/widget/3/earlier-delivery"

// claimElsewhere claims sha's build for builtElsewhere.
func claimElsewhere(t *testing.T, q *fakeQueue, sha string) {
	t.Helper()
	if _, err := q.Registry.ClaimBuildFor(t.Context(), events.Repo{Owner: "acme", Name: "widget"}, 3, sha, builtElsewhere, false); err != nil {
		t.Fatal(err)
	}
}

const (
	decideSHA   = "1111111111111111111111111111111111111111"
	decideNewer = "2222222222222222222222222222222222222222"
)

// prepareURL is where the preparation log of decideSHA is served.
var prepareURL = strings.TrimSuffix(httpRoot, "/") + "/acme/widget/pulls/3/prepare-" + decideSHA + ".txt"

func openPull(state, head, author string) *github.PullRequest {
	return &github.PullRequest{
		Number: github.Ptr(3), State: github.Ptr(state),
		Head: &github.PullRequestBranch{SHA: github.Ptr(head)},
		Base: &github.PullRequestBranch{Ref: github.Ptr("main"), Repo: &github.Repository{CloneURL: github.Ptr("https://github.invalid/acme/widget.git")}},
		User: &github.User{Login: github.Ptr(author)},
	}
}

// decideCase is one pull event, the world it meets, and what the worker
// must decide.
type decideCase struct {
	name      string
	sha       string
	pull      *github.PullRequest
	status    int   // GitHub's answer to reading the pull, when not 200
	instErr   error // authenticating fails
	level     string
	built     bool  // another delivery claimed the head's build before
	claimErr  error // the build numbers cannot be reached
	delivered uint64
	cancelled bool

	want      Outcome
	wantDelay time.Duration
	// wantBuild is the head's build afterwards (zero: none), wantAsked
	// whether its approval was asked for.
	wantBuild  memregistry.HeadBuild
	wantAsked  bool
	wantStatus string // a substring of what the head's summary shows
}

func TestDecidePull(t *testing.T) {
	t.Parallel()
	cases := []decideCase{
		{name: "invalid_head_sha_terminates_without_asking_github", sha: "not-a-sha", want: Terminate},
		// The failure is recorded on the head's summary, which the
		// projector shows with its own credentials.
		{name: "authentication_failure_is_handed_back_and_shown", instErr: errors.New("token endpoint down"), delivered: 1,
			want: HandBack, wantDelay: 15 * time.Second,
			wantStatus: "yci: pending preparing failed (attempt 1 of 9): authenticating for installation 0: token endpoint down; retrying <" + prepareURL + ">"},
		{name: "the_hand_back_delay_grows_with_deliveries", instErr: errors.New("token endpoint down"), delivered: 3,
			want: HandBack, wantDelay: 45 * time.Second, wantStatus: "(attempt 3 of 9)"},
		{name: "github_outage_reading_the_pull_is_handed_back_and_shown_at_once", status: http.StatusBadGateway, delivered: 1,
			want: HandBack, wantDelay: 15 * time.Second,
			wantStatus: "yci: pending preparing failed (attempt 1 of 9): reading pull request acme/widget#3: …: 502 Bad Gateway []; retrying <" + prepareURL + ">"},
		{name: "deleted_pull_404_terminates", status: http.StatusNotFound, want: Terminate},
		{name: "closed_pull_is_done_without_a_build", pull: openPull("closed", decideSHA, "alice"), want: Done},
		{name: "superseded_head_is_done_without_a_build", pull: openPull("open", decideNewer, "alice"), want: Done},
		{name: "outsider_waits_for_approval", pull: openPull("open", decideSHA, "mallory"), level: "read",
			want: Done, wantAsked: true, wantStatus: "yci: pending"},
		{name: "head_already_built_is_done_and_not_queued_again", pull: openPull("open", decideSHA, "alice"), level: "write",
			built: true, want: Done, wantBuild: memregistry.HeadBuild{Build: 1, By: builtElsewhere}},
		{name: "claim_failure_is_handed_back", pull: openPull("open", decideSHA, "alice"), level: "admin",
			claimErr: errors.New("nats timeout"), delivered: 2, want: HandBack, wantDelay: 30 * time.Second,
			// The registry's own context leaves the cause past the 140
			// characters a description may have.
			wantStatus: "yci: pending preparing failed (attempt 2 of 9): claiming a build number: …: nats timeout; retrying"},
		{name: "shutdown_hands_back_at_once", pull: openPull("open", decideSHA, "alice"), level: "write",
			cancelled: true, want: HandBack},
		{name: "last_delivery_gives_up_with_an_error_status_linking_the_log", delivered: 10,
			want: Done, wantStatus: "yci: error error: gave up preparing the build after 9 attempts; see the preparation log <" + prepareURL + ">"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, q := decideWorker(t, tc)
			ev := events.PullEvent{Repo: events.Repo{Owner: "acme", Name: "widget"}, Number: 3, HeadSHA: tc.sha, Delivery: "d1"}
			if ev.HeadSHA == "" {
				ev.HeadSHA = decideSHA
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelled {
				cancel()
			}

			v := w.pulls.decide(ctx, w.log, ev, prepAttempt{delivered: max(tc.delivered, 1), maxDeliver: 10})

			if v.Outcome != tc.want || v.Delay != tc.wantDelay {
				t.Errorf("verdict %v after %v, err %v; want %v after %v", v.Outcome, v.Delay, v.Err, tc.want, tc.wantDelay)
			}
			if (v.Err != nil) != (tc.want != Done) {
				t.Errorf("verdict %v carries err %v", v.Outcome, v.Err)
			}
			checkRegistry(t, q, ev, tc.wantBuild, tc.wantAsked)
			if n, jobs := q.announcedHeads(), len(q.jobs); n != 0 || jobs != 0 {
				t.Errorf("%d heads announced and %d jobs queued, want none", n, jobs)
			}
			got := headShows(t, w, ev)
			if tc.wantStatus == "" && got != "" || !strings.Contains(got, tc.wantStatus) {
				t.Errorf("the head's summary shows:\n%s\nwant %q in it", got, tc.wantStatus)
			}
		})
	}
}

// decideWorker is a Worker whose GitHub and queue are the in-memory fakes
// tc describes. Its workspace is a real directory; only failed
// preparations write to it (their preparation log).
func decideWorker(t *testing.T, tc decideCase) (*Worker, *fakeQueue) {
	t.Helper()
	ws, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	q := newFakeQueue()
	if tc.built {
		claimElsewhere(t, q, decideSHA)
	}
	q.FailBuilds(tc.claimErr)
	inst := Installation{
		Pulls:       &fakePulls{pull: tc.pull, status: tc.status},
		Permissions: fakePermissions{level: tc.level},
	}
	w, err := New(Options{
		Workspace: ws, Evaluator: &pipeline.Evaluator{}, Runner: &pipeline.Runner{},
		GitHub: fakeGitHub{inst: inst, err: tc.instErr}, Queue: q, Records: memrecords.New(), HTTPRoot: httpRoot,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return w, q
}

// checkRegistry checks what the registry holds of ev's head afterwards:
// its build (zero for none) and whether its approval was asked for.
func checkRegistry(t *testing.T, q *fakeQueue, ev events.PullEvent, wantBuild memregistry.HeadBuild, wantAsked bool) {
	t.Helper()
	if got, _ := q.HeadBuild(ev.Repo, ev.Number, ev.HeadSHA); got != wantBuild {
		t.Errorf("the head's build afterwards is %+v, want %+v", got, wantBuild)
	}
	a, err := q.ApprovalOf(context.Background(), ev.Repo, ev.Number)
	if err != nil {
		t.Fatal(err)
	}
	if asked := a.Asked == ev.HeadSHA; asked != wantAsked {
		t.Errorf("approval of the head asked for: %v, want %v", asked, wantAsked)
	}
}

func TestJudgeError(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name      string
		ctx       context.Context
		err       error
		delivered uint64
		want      Outcome
		wantDelay time.Duration
	}{
		{"nil_is_done", context.Background(), nil, 1, Done, 0},
		{"permanent_terminates", context.Background(), permanent(errors.New("no clone URL")), 1, Terminate, 0},
		{"invalid_event_terminates", context.Background(), fmt.Errorf("x: %w", events.ErrInvalidEvent), 1, Terminate, 0},
		{"invalid_name_terminates", context.Background(), fmt.Errorf("x: %w", artifacts.ErrInvalid), 1, Terminate, 0},
		{"rejected_status_terminates", context.Background(), fmt.Errorf("x: %w", status.ErrRejected), 1, Terminate, 0},
		{"transient_waits_by_delivery", context.Background(), errors.New("timeout"), 2, HandBack, 30 * time.Second},
		{"transient_wait_is_capped", context.Background(), errors.New("timeout"), 100, HandBack, 5 * time.Minute},
		{"retry_after_from_github_wins", context.Background(), &status.RetryLaterError{After: 7 * time.Second}, 9, HandBack, 7 * time.Second},
		{"full_disk_hands_back_with_backoff", context.Background(), infrastructure(InfraDisk, &fs.PathError{Op: "mkdir", Path: "/ws/t", Err: syscall.ENOSPC}), 3, HandBack, 45 * time.Second},
		{"shutdown_hands_back_at_once_even_a_permanent_error", cancelled, permanent(errors.New("x")), 1, HandBack, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := judgeError(tc.ctx, tc.err, tc.delivered)
			if v.Outcome != tc.want || v.Delay != tc.wantDelay || !errors.Is(v.Err, tc.err) {
				t.Errorf("judgeError = %+v, want %v after %v carrying %v", v, tc.want, tc.wantDelay, tc.err)
			}
		})
	}
}
