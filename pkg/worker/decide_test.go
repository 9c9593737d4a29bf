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
	"syscall"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
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

// fakeQueue is worker.Queue in memory: claim is what ClaimBuildFor
// answers (claimErr fails it), and calls lists what was asked of it.
type fakeQueue struct {
	fakeHeads
	claim    events.Claim
	claimErr error
	mu       sync.Mutex
	calls    []string
	asked    map[string]bool
}

func (q *fakeQueue) called(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls = append(q.calls, name)
}

func (q *fakeQueue) ClaimBuildFor(context.Context, events.Repo, int, string, string, bool) (events.Claim, error) {
	q.called("ClaimBuildFor")
	return q.claim, q.claimErr
}

func (q *fakeQueue) MarkQueued(context.Context, events.Repo, int, string, int) error {
	q.called("MarkQueued")
	return nil
}

func (q *fakeQueue) PublishTest(context.Context, events.TestJob) error {
	q.called("PublishTest")
	return nil
}

func (q *fakeQueue) AnnounceHead(events.HeadAnnouncement) error {
	q.called("AnnounceHead")
	return nil
}

func (q *fakeQueue) ApprovalOf(context.Context, events.Repo, int) (events.Approval, error) {
	return events.Approval{}, nil
}

func (q *fakeQueue) Approve(context.Context, events.Repo, int, string, string) error {
	q.called("Approve")
	return nil
}

// SeeHead answers that every head was first seen now; it is not recorded
// in calls.
func (q *fakeQueue) SeeHead(_ context.Context, _ events.Repo, _ int, _ string, now time.Time) (time.Time, error) {
	return now, nil
}

func (q *fakeQueue) AskApproval(_ context.Context, _ events.Repo, _ int, sha string) (bool, error) {
	q.called("AskApproval")
	q.mu.Lock()
	defer q.mu.Unlock()
	first := !q.asked[sha]
	if q.asked == nil {
		q.asked = map[string]bool{}
	}
	q.asked[sha] = true
	return first, nil
}

func (q *fakeQueue) ForgetAsked(context.Context, events.Repo, int, string) error { return nil }

func (q *fakeQueue) callList() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return strings.Join(q.calls, ",")
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
	claim     events.Claim
	claimErr  error
	delivered uint64
	cancelled bool

	want       Outcome
	wantDelay  time.Duration
	wantCalls  string
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
			wantStatus: "yci: pending preparing failed (attempt 1 of 9): reading pull request acme/widget#3: GET https://api.github.invalid/repos/acme/widget/pulls/3:…; retrying <" + prepareURL + ">"},
		{name: "deleted_pull_404_terminates", status: http.StatusNotFound, want: Terminate},
		{name: "closed_pull_is_done_without_a_build", pull: openPull("closed", decideSHA, "alice"), want: Done},
		{name: "superseded_head_is_done_without_a_build", pull: openPull("open", decideNewer, "alice"), want: Done},
		{name: "outsider_waits_for_approval", pull: openPull("open", decideSHA, "mallory"), level: "read",
			want: Done, wantCalls: "AskApproval", wantStatus: "yci: pending"},
		{name: "head_already_built_is_done_and_not_queued_again", pull: openPull("open", decideSHA, "alice"), level: "write",
			claim: events.Claim{Build: 4}, want: Done, wantCalls: "ClaimBuildFor"},
		{name: "claim_failure_is_handed_back", pull: openPull("open", decideSHA, "alice"), level: "admin",
			claimErr: errors.New("nats timeout"), delivered: 2, want: HandBack, wantDelay: 30 * time.Second, wantCalls: "ClaimBuildFor",
			wantStatus: "yci: pending preparing failed (attempt 2 of 9): claiming a build number: nats timeout; retrying <" + prepareURL + ">"},
		{name: "shutdown_hands_back_at_once", pull: openPull("open", decideSHA, "alice"), level: "write",
			claimErr: context.Canceled, cancelled: true, want: HandBack, wantCalls: "ClaimBuildFor"},
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
			if got := q.callList(); got != tc.wantCalls {
				t.Errorf("queue calls %q, want %q", got, tc.wantCalls)
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
	q := &fakeQueue{claim: tc.claim, claimErr: tc.claimErr}
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
