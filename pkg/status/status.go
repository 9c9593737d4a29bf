// Package status reports the state of YourCI's tests to GitHub, as commit
// statuses (token and basic auth) or as check runs (a GitHub App). It
// shapes what GitHub shows (context, description, link, check output),
// keeps secrets out of it, and
// delivers it through GitHub's faults and rate limits: a final state is
// either sent, refused for good (ErrRejected), or handed back to the caller
// as an error to retry later, never silently dropped.
package status

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/pause"
)

// StatusCreator is the one GitHub call a StatusWriter needs. Its signature
// is go-github's, so a *github.Client's Repositories service satisfies it.
type StatusCreator interface {
	CreateStatus(ctx context.Context, owner, repo, ref string, status github.RepoStatus) (*github.RepoStatus, *github.Response, error)
}

// State is a commit status state as GitHub names it.
type State string

// The four states GitHub accepts for a commit status.
const (
	Pending State = "pending"
	Success State = "success"
	Failure State = "failure"
	Error   State = "error"
)

// valid reports whether GitHub accepts s.
func (s State) valid() bool {
	switch s {
	case Pending, Success, Failure, Error:
		return true
	}
	return false
}

// ContextPrefix is the status context of build-wide statuses and the prefix
// of every test's context.
const ContextPrefix = "yci"

// Context returns the status context GitHub shows for a test: "yci/<test>",
// or "yci" alone for a status about the whole build (empty test).
func Context(test string) string {
	if test == "" {
		return ContextPrefix
	}
	return ContextPrefix + "/" + test
}

// Status is one state of a test (or of the whole build) to show on a head
// commit.
type Status struct {
	Owner, Repo, SHA string
	// Pull and Build name the build the state belongs to; check runs carry
	// them in their external_id (see ExternalID).
	Pull, Build int
	// Rerun numbers the re-run the state belongs to (0 for the build's
	// own run): each re-run is a check run of its own.
	Rerun int
	// Test names the test; the status context becomes Context(Test), and an
	// empty Test reports on the whole build.
	Test  string
	State State
	// Description is cut to GitHub's 140 characters, made one line, and has
	// every secret the Reporter knows masked before it is sent.
	Description string
	// TargetURL links the status to the test's log; secrets are masked in
	// it too.
	TargetURL string
	// Started marks a Pending state of an attempt that has begun (a check
	// run's in_progress; without it a pending check run is queued). The
	// job that sets it always follows it with another state, so a
	// projector holds it briefly and never sends it when that state
	// overtakes it.
	Started bool
	// New marks the first state of a test in a build: no check run can
	// exist for it yet, so none is looked up before one is created.
	New bool
	// Conclusion refines a final state for check runs (timed_out,
	// cancelled, neutral); empty means the State's own. Commit statuses
	// ignore it.
	Conclusion Conclusion
	// Output is the check run's report; nil means one made of the
	// description. Commit statuses ignore it. Secrets are masked in it and
	// it is cut to GitHub's limits.
	Output *Output
}

// Final reports whether s ends its context's story: success, failure or
// error.
func (s Status) Final() bool { return s.State != Pending }

// ErrInvalid is wrapped by errors for statuses that are never sent because
// they are incomplete (no owner, repo, sha or a state GitHub does not know).
var ErrInvalid = errors.New("invalid status")

// Reporter sets the states of tests with bounded retries, through a Writer
// (commit statuses or check runs); what is written when is paced by its
// caller (pkg/projector). It is safe for concurrent use; its settings are fixed when
// it is built.
type Reporter struct {
	writer      Writer
	secrets     []string
	secretsFrom func() []string
	policy      retryPolicy
	now         func() time.Time
	sleep       func(context.Context, time.Duration) error
	logger      *slog.Logger
}

// Option changes how a Reporter is built.
type Option func(*Reporter)

// WithSecrets adds values that must never appear in a description or link;
// each occurrence is replaced by "***". Empty values are ignored.
func WithSecrets(secrets ...string) Option {
	return func(r *Reporter) {
		for _, s := range secrets {
			if s != "" {
				r.secrets = append(r.secrets, s)
			}
		}
	}
}

// WithSecretsFrom adds a source of secrets asked at every Set, for
// credentials that appear while the process runs, such as GitHub App
// installation tokens (githubauth's Clients.Secrets fits). It must be safe
// for concurrent use.
func WithSecretsFrom(secrets func() []string) Option {
	return func(r *Reporter) { r.secretsFrom = secrets }
}

// WithMaxAttempts bounds how many times one status is tried (default 6).
func WithMaxAttempts(n int) Option {
	return func(r *Reporter) { r.policy.maxAttempts = max(n, 1) }
}

// WithMaxElapsed bounds the total time Set spends on one status, waits
// included (default 2 minutes); past it, Set returns a *RetryLaterError.
func WithMaxElapsed(d time.Duration) Option {
	return func(r *Reporter) { r.policy.maxElapsed = d }
}

// WithMaxWait is the longest wait GitHub may impose (Retry-After, rate limit
// reset) that Set sits out itself (default 1 minute). A longer one is
// returned at once as a *RetryLaterError so the job can go back to the queue
// instead of holding a worker.
func WithMaxWait(d time.Duration) Option {
	return func(r *Reporter) { r.policy.maxWait = d }
}

// WithBackoff sets the first and the largest wait between attempts after a
// server or network fault (defaults 1s and 30s); waits double in between and
// are jittered.
func WithBackoff(first, largest time.Duration) Option {
	return func(r *Reporter) {
		r.policy.firstDelay = first
		r.policy.maxDelay = max(largest, first)
	}
}

// WithAttemptTimeout bounds a single call to GitHub (default 30 seconds).
func WithAttemptTimeout(d time.Duration) Option {
	return func(r *Reporter) { r.policy.attemptTimeout = d }
}

// WithClock replaces the clock and the sleep between attempts, for tests.
// sleep must return early with ctx.Err() when ctx ends.
func WithClock(now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(r *Reporter) {
		r.now = now
		r.sleep = sleep
	}
}

// WithLogger sets where retried faults are logged (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(r *Reporter) { r.logger = l }
}

// NewReporter returns a Reporter that sends commit statuses through client.
func NewReporter(client StatusCreator, opts ...Option) *Reporter {
	return NewReporterFor(StatusWriter{Client: client}, opts...)
}

// NewReporterFor returns a Reporter that shows states through w.
func NewReporterFor(w Writer, opts ...Option) *Reporter {
	r := &Reporter{
		writer: w,
		policy: defaultPolicy(),
		now:    time.Now,
		sleep:  pause.For,
		logger: slog.Default(),
	}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// Set sends s to GitHub, retrying server errors, network errors and rate
// limits within the Reporter's bounds. It returns nil once GitHub has the
// state; an error wrapping ErrRejected when GitHub refuses it for good (a retry
// cannot help); a *RetryLaterError when it could not be sent in time and
// the caller should try again after its After (for instance with a
// JetStream NakWithDelay); ctx's error when ctx ends first; and, without
// calling GitHub, an error wrapping ErrInvalid for an incomplete status.
func (r *Reporter) Set(ctx context.Context, s Status) error {
	if err := s.check(); err != nil {
		return err
	}
	secrets := r.secrets
	if r.secretsFrom != nil {
		secrets = append(slices.Clip(secrets), r.secretsFrom()...)
	}
	s = s.cleaned(secrets)
	return r.deliver(ctx, s)
}

// deliver sends s, already cleaned, with the Reporter's retries.
func (r *Reporter) deliver(ctx context.Context, s Status) error {
	ctxName := Context(s.Test)
	log := r.logger.With("repo", s.Owner+"/"+s.Repo, "sha", s.SHA, "test", ctxName)
	if err := r.send(ctx, log, s); err != nil {
		return fmt.Errorf("setting status %s=%s on %s/%s@%s: %w", ctxName, s.State, s.Owner, s.Repo, s.SHA, err)
	}
	return nil
}

// cleaned is s as GitHub may show it: secrets masked everywhere, the
// description one line within its limit, the output within its limits.
func (s Status) cleaned(secrets []string) Status {
	s.Description = cleanDescription(s.Description, secrets)
	s.TargetURL = mask(s.TargetURL, secrets)
	if s.Output != nil {
		out := s.Output.fit(secrets)
		s.Output = &out
	}
	return s
}

// check refuses a status GitHub could never accept.
func (s Status) check() error {
	var missing []string
	if s.Owner == "" {
		missing = append(missing, "owner")
	}
	if s.Repo == "" {
		missing = append(missing, "repo")
	}
	if s.SHA == "" {
		missing = append(missing, "sha")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrInvalid, strings.Join(missing, ", "))
	}
	if !s.State.valid() {
		return fmt.Errorf("%w: unknown state %q", ErrInvalid, s.State)
	}
	if !s.Conclusion.valid() {
		return fmt.Errorf("%w: unknown conclusion %q", ErrInvalid, s.Conclusion)
	}
	return nil
}

// ShowsOutput reports whether the Reporter's states show Status.Output
// (check runs do, commit statuses do not), so that a caller can skip
// building one that nobody will see.
func (r *Reporter) ShowsOutput() bool {
	_, ok := r.writer.(CheckRunWriter)
	return ok
}
