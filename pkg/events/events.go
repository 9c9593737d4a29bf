// Package events defines the messages YourCI passes through NATS JetStream,
// the subjects they travel on, the stream, consumers and key-value buckets
// that carry them, and the records kept there: each build and its tests'
// states (BuildRecord, TestState), which the pages, /retest and the re-run
// buttons read, and the claims, approvals, re-runs and heads that keep
// boxes from doing one thing twice. It speaks GitHub's nouns but never its
// API: a repository, pull number, commit id, comment or check run id, the
// approval label and a link to GitHub's pages are plain data here, and the
// rules for them (Repo.Validate, ValidateSHA, ValidateTestName) live here
// so that every edge shares one. It runs no git, no tests and no HTTP; of
// YourCI it imports only pkg/pause. A message is plain data any box can act
// on.
//
// Delivery is at least once. Publishers wait for JetStream's acknowledgement
// and set a message id, so a copy published again within DuplicateWindow is
// dropped; longer-lived de-duplication (one build per head commit) is
// ClaimBuild's key-value record. Consumers fetch a message only when a
// worker slot is free, keep it alive while they work (KeepAlive), and
// settle it once: Ack when done and reported, Nak to hand it back, Term
// when it can never succeed. A message whose handler crashes, hangs without
// KeepAlive or panics comes back, at most MaxDeliver times; the last time
// the handler sees LastChance and reports the failure. Retry waits travel
// through the queue as TestJob.NotBefore. Everything here works on
// nats-server 2.9.10 (Debian's) as well as current servers.
package events

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"time"
)

// Version is the schema version written into every message. A consumer that
// meets a newer version than it knows terminates the message with a reason
// rather than guessing at its meaning. A new optional field whose absence
// keeps the old meaning (PullEvent.LabeledBy) does not change the version:
// a worker that does not know it builds as it did before.
const Version = 1

// GroupVersion is the version of a merge group's messages (its pull
// event, its tests' jobs, its commands). A worker from before merge
// groups knows only Version 1 and would take a group for a pull request:
// ask for approval on it under an approving policy, merge its head (GitHub's
// merge already) into the branch's tip again, evaluate .yci.py without
// YCI_MERGE_GROUP, and, in its sweep, read it from the pulls API. Under
// GroupVersion it terminates the message instead, and the merge queue
// times the group out: a lost group, never a wrong verdict on one. So in
// a fleet that mixes versions, upgrade the workers before the receivers.
// A worker that knows GroupVersion accepts both versions of any message
// (groups published as Version 1 before it are built as groups).
const GroupVersion = 2

// versionOf is the version a message about pull or merge group n is
// published under.
func versionOf(n int) int {
	if IsGroup(n) {
		return GroupVersion
	}
	return Version
}

// knownVersion reports whether a message of version v can be read: every
// version up to GroupVersion means what this program takes it to mean.
func knownVersion(v int) bool { return v >= Version && v <= GroupVersion }

// Repo names a repository on the forge as owner and name.
type Repo struct {
	Owner string `json:"owner"`
	Name  string `json:"name"`
}

// FullName is "owner/name", as GitHub spells it.
func (r Repo) FullName() string { return r.Owner + "/" + r.Name }

// PullEvent asks a worker to build one head commit of a pull request
// (handle_pull). It is deliberately slim: a webhook body may be 25 MB while
// NATS refuses messages over 1 MB. Of the body it keeps the pull request
// object (Pull, at most MaxPullLen), so the worker need not read it again
// from the forge's API before building; events without it (the sweep's,
// a webhook's too large to carry, an older receiver's) are read there.
type PullEvent struct {
	Version      int    `json:"v"`
	Repo         Repo   `json:"repo"`
	Number       int    `json:"number"`
	HeadSHA      string `json:"head_sha"`
	Installation int64  `json:"installation,omitempty"`
	// Delivery identifies where the event came from: the X-GitHub-Delivery
	// id of a webhook, or a reconcile sweep's own id.
	Delivery string `json:"delivery,omitempty"`
	// Rebuild asks for a new build even when this head commit has one.
	Rebuild bool `json:"rebuild,omitempty"`
	// LabeledBy, when set, says the event is the approval label being
	// added to the pull request, and names who added it (the webhook's
	// sender). It is a claim, not an approval: the worker records an
	// approval of HeadSHA only once it has checked that this user may
	// write to the repository.
	LabeledBy string `json:"labeled_by,omitempty"`
	// Pull is the pull request object as the signed webhook delivered it,
	// byte for byte (what .yci.py reads), or empty: see MaxPullLen.
	// PullUpdatedAt is its updated_at, which orders the pull's head
	// records (HeadRecord); zero when the event carries no pull.
	Pull          json.RawMessage `json:"pull,omitempty"`
	PullUpdatedAt time.Time       `json:"pull_updated_at,omitzero"`
}

// TestSpec is one configuration of a build's test matrix, as the
// repository's .yci.py yielded it.
type TestSpec struct {
	Name           string            `json:"name"`
	Command        string            `json:"command"`
	Env            map[string]string `json:"env,omitempty"`
	Timeout        time.Duration     `json:"timeout,omitempty"`
	Retries        int               `json:"retries,omitempty"`
	RetryIncrement time.Duration     `json:"retry_increment,omitempty"`
}

// TestJob asks a worker to run one attempt of one test of a build
// (handle_test). A retry is a new TestJob with Attempt+1 and NotBefore set,
// so the wait travels through the queue and the retry may run on any box.
type TestJob struct {
	Version      int      `json:"v"`
	Repo         Repo     `json:"repo"`
	Number       int      `json:"number"`
	HeadSHA      string   `json:"head_sha"`
	Installation int64    `json:"installation,omitempty"`
	Build        int      `json:"build"`
	Test         TestSpec `json:"test"`
	// Attempt counts from 1.
	Attempt int `json:"attempt"`
	// Rerun is 0 for the build's own run of the test, and k for its k-th
	// re-run (asked for by a /retest comment): a new series of attempts
	// with its own log, beside the earlier runs' logs.
	Rerun int `json:"rerun,omitempty"`
	// NotBefore is when the attempt may start; zero means now. A job
	// delivered earlier is handed back to the queue until then and never
	// reaches a handler early.
	NotBefore time.Time `json:"not_before,omitzero"`
	// Requeues counts how often the Bus re-published this attempt while it
	// waited for NotBefore (so the wait does not use up MaxDeliver). It is
	// part of the message id and of no interest to handlers.
	Requeues int `json:"requeues,omitempty"`
	// InfraSince and InfraRetries say the attempt has waited for this box
	// (or another) to recover from an infrastructure error (a full disk,
	// a sandbox that could not be set up, a lost mirror): since when, and
	// how often it was re-published to wait. Such waits use no deliveries
	// (MaxDeliver is for crashes); the worker bounds them by time instead.
	// InfraRetries is part of the message id. Both are zero otherwise.
	InfraSince   time.Time `json:"infra_since,omitzero"`
	InfraRetries int       `json:"infra_retries,omitempty"`
	// Outcome, when set, says the attempt already ran and only its final
	// status is still to be reported: a status that could not be sent is
	// retried through the queue without running the test again.
	Outcome *Outcome `json:"outcome,omitempty"`
	// BaseRef and CloneURL are the pull request's base branch and its
	// base repository's clone URL as the build found them (in the
	// webhook's pull request or an API read), so that a test's checkout
	// need not wait for the pull request to be read again. Jobs from
	// older workers lack them; their tests read the pull request first.
	BaseRef  string `json:"base_ref,omitempty"`
	CloneURL string `json:"clone_url,omitempty"`
	// HeadRef is the branch the head commit was pushed to (YCI_HEAD_REF)
	// and PullUpdatedAt the pull request's updated_at when the build read
	// it: with them a test learns whether its head is still current from
	// the head record (HeadRecord) instead of reading the pull request.
	// Jobs without them read it.
	HeadRef       string    `json:"head_ref,omitempty"`
	PullUpdatedAt time.Time `json:"pull_updated_at,omitzero"`
	// BaseSHA is the base branch's commit the build merged the head into
	// (YCI_BASE_SHA), and TestSHA the commit every test of the build
	// checks out: that merge, or HeadSHA itself when there was nothing to
	// merge or merging is off. A box without TestSHA makes the merge of
	// HeadSHA into BaseSHA again, which gives the same commit. Jobs from
	// older workers lack both and test HeadSHA; statuses are always
	// reported on HeadSHA.
	BaseSHA string `json:"base_sha,omitempty"`
	TestSHA string `json:"test_sha,omitempty"`
}

// Tested is the commit the job's test checks out: TestSHA, or HeadSHA for
// jobs that do not say.
func (j TestJob) Tested() string {
	if j.TestSHA != "" {
		return j.TestSHA
	}
	return j.HeadSHA
}

// Outcome is the final state of a test attempt as it is to be reported.
type Outcome struct {
	State       string `json:"state"`
	Description string `json:"description"`
}

// MsgID is the JetStream message id of the event, which makes the stream
// drop a copy published again within the duplicate window: the same
// webhook delivery (or reconcile id) for the same head commit is one
// message.
func (e PullEvent) MsgID() string {
	id := "pull/" + EncodeToken(e.Repo.Owner) + "/" + EncodeToken(e.Repo.Name) + "/" +
		strconv.Itoa(e.Number) + "/" + EncodeToken(e.HeadSHA) + "/" + EncodeToken(e.Delivery)
	if e.Rebuild {
		id += "/rebuild"
	}
	return id
}

// MsgID is the JetStream message id of the job,
// test/<owner>/<repo>/<pull>/<build>/<name>/<attempt>[/rerun/<k>]
// [/infra/<n>][/requeue/<m>][/report] with each name encoded, so
// publishing the same attempt twice queues it once.
func (j TestJob) MsgID() string {
	id := "test/" + EncodeToken(j.Repo.Owner) + "/" + EncodeToken(j.Repo.Name) + "/" +
		strconv.Itoa(j.Number) + "/" + strconv.Itoa(j.Build) + "/" + EncodeToken(j.Test.Name) + "/" +
		strconv.Itoa(j.Attempt)
	if j.Rerun > 0 {
		id += "/rerun/" + strconv.Itoa(j.Rerun)
	}
	if j.InfraRetries > 0 {
		id += "/infra/" + strconv.Itoa(j.InfraRetries)
	}
	if j.Requeues > 0 {
		id += "/requeue/" + strconv.Itoa(j.Requeues)
	}
	if j.Outcome != nil {
		id += "/report"
	}
	return id
}

// LogAttrs are the event's fields under YourCI's fixed log keys, for one
// enriched logger per job: logger.With(e.LogAttrs()...).
func (e PullEvent) LogAttrs() []any {
	return withGroup([]any{
		slog.String("repo", e.Repo.FullName()),
		slog.Int("pull", e.Number),
		slog.String("sha", e.HeadSHA),
		slog.String("delivery", e.Delivery),
	}, e.Number)
}

// withGroup adds the merge_group key to the attributes of a merge group's
// message, so a log names it as one (DescribePull).
func withGroup(attrs []any, number int) []any {
	if IsGroup(number) {
		attrs = append(attrs, slog.String("merge_group", DescribePull(number)))
	}
	return attrs
}

// LogAttrs are the job's fields under YourCI's fixed log keys, for one
// enriched logger per job: logger.With(j.LogAttrs()...).
func (j TestJob) LogAttrs() []any {
	return withGroup([]any{
		slog.String("repo", j.Repo.FullName()),
		slog.Int("pull", j.Number),
		slog.String("sha", j.HeadSHA),
		slog.Int("build", j.Build),
		slog.String("test", j.Test.Name),
		slog.Int("attempt", j.Attempt),
		slog.Int("rerun", j.Rerun),
	}, j.Number)
}
