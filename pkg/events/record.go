package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/pause"
)

// TestState is where one test of a build stands, as its build record keeps
// it. The four final states are Passed, Failed, Errored and Superseded.
type TestState string

// The states of a test in a build record.
const (
	TestQueued   TestState = "queued"
	TestRunning  TestState = "running"
	TestRetrying TestState = "retrying" // an attempt failed; the next one waits
	TestPassed   TestState = "passed"
	TestFailed   TestState = "failed"
	TestErrored  TestState = "error"
	// TestSuperseded: the test was dropped before it ran, or stopped while
	// it ran, because a newer commit was pushed to its pull request
	// (TestRecord.SupersededBy). Nothing was judged.
	TestSuperseded TestState = "superseded"
)

// Final reports whether s is an end state: the test will not change again
// unless it is run anew.
func (s TestState) Final() bool {
	return s == TestPassed || s == TestFailed || s == TestErrored || s == TestSuperseded
}

// ShortSHA abbreviates a commit id the way GitHub shows it: its first
// seven characters.
func ShortSHA(sha string) string {
	if r := []rune(sha); len(r) > 7 {
		return string(r[:7])
	}
	return sha
}

// AttemptRecord is one run of a test.
type AttemptRecord struct {
	// Rerun is 0 for the build's own run of the test and k for its k-th
	// re-run (a /retest); Number counts attempts from 1 within that run.
	Rerun  int       `json:"rerun,omitempty"`
	Number int       `json:"number"`
	Start  time.Time `json:"start"`
	// Duration and Outcome are set when the attempt ended; an empty
	// Outcome means it is running (or its worker died).
	Duration time.Duration `json:"duration,omitempty"`
	Outcome  string        `json:"outcome,omitempty"`
}

// TestRecord is one test of a build: its state and every attempt so far.
type TestRecord struct {
	Name  string    `json:"name"`
	State TestState `json:"state"`
	// Description is the test's latest status description.
	Description string `json:"description,omitempty"`
	// MaxAttempts is how many attempts the test may have (retries + 1).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Command is the command .yci.py gave the test, cut to
	// MaxRecordedCommand (RecordedCommand): author-controlled text, to be
	// escaped wherever it is shown. Empty in records written before it
	// was kept.
	Command  string          `json:"command,omitempty"`
	Attempts []AttemptRecord `json:"attempts,omitempty"`
	// LogURL is where the test's log is served by the box that ran it
	// last; empty when that box serves none.
	LogURL string `json:"log_url,omitempty"`
	// Flaky says the test passed after a failed attempt.
	Flaky bool `json:"flaky,omitempty"`
	// Rerun is the run the test's state is of: 0 for the build's own, k
	// for its k-th re-run (queued before its first attempt exists).
	Rerun int `json:"rerun,omitempty"`
	// SupersededBy is the commit whose push ended the test, set while
	// State is TestSuperseded and empty otherwise.
	SupersededBy string `json:"superseded_by,omitempty"`
	// Conclusion refines a final state where "failed" or "error" says too
	// little ("timed_out", "cancelled"); empty means the state's own.
	Conclusion string `json:"conclusion,omitempty"`
	// Report is the test's latest report beyond its description (the
	// attempts and the end of its log), for places that show one.
	Report  *Report   `json:"report,omitempty"`
	Updated time.Time `json:"updated"`
}

// Report is a test's report: a short summary (Markdown) and a longer
// text, such as the end of its log. Records keep it small (MaxReportText).
type Report struct {
	Summary string `json:"summary,omitempty"`
	Text    string `json:"text,omitempty"`
}

// Latest returns the test's latest attempt, or nil before the first.
func (t *TestRecord) Latest() *AttemptRecord {
	if len(t.Attempts) == 0 {
		return nil
	}
	return &t.Attempts[len(t.Attempts)-1]
}

// BuildKey names one build of a pull request.
type BuildKey struct {
	Repo  Repo `json:"repo"`
	Pull  int  `json:"pull"`
	Build int  `json:"build"`
}

// Validate refuses a key that names no build.
func (k BuildKey) Validate() error {
	var errs []error
	if k.Repo.Owner == "" || k.Repo.Name == "" {
		errs = append(errs, fmt.Errorf("repository %q: %w", k.Repo.FullName(), ErrInvalidEvent))
	}
	if k.Pull < 1 {
		errs = append(errs, fmt.Errorf("pull number %d: %w", k.Pull, ErrInvalidEvent))
	}
	if k.Build < 1 {
		errs = append(errs, fmt.Errorf("build number %d: %w", k.Build, ErrInvalidEvent))
	}
	return errors.Join(errs...)
}

// String is "owner/repo#pull/build", for logs and errors.
func (k BuildKey) String() string {
	return k.Repo.FullName() + "#" + strconv.Itoa(k.Pull) + "/" + strconv.Itoa(k.Build)
}

// recordKey is the key-value key of a build record:
// build.<owner>.<repo>.<pull>.<build>, names encoded.
func recordKey(k BuildKey) string {
	return recordPrefix(k.Repo) + strconv.Itoa(k.Pull) + "." + strconv.Itoa(k.Build)
}

func recordPrefix(repo Repo) string { return "build." + repoTokens(repo) + "." }

// BuildRecord is what YourCI knows of one build: its head commit and every
// test with its state and attempts. Tests of one build run on several
// boxes, so it lives in the key-value bucket and changes only through
// UpdateBuild's compare-and-set.
type BuildRecord struct {
	Version int      `json:"v"`
	Key     BuildKey `json:"key"`
	SHA     string   `json:"sha"`
	// Title and Branch describe the pull request as its author wrote
	// them: untrusted text, to be escaped wherever it is shown.
	Title  string `json:"title,omitempty"`
	Branch string `json:"branch,omitempty"`
	// PullURL is the pull request's page on GitHub (its html_url) as the
	// build read it: untrusted too, linked only through PullLink. Empty
	// in records written before it was kept.
	PullURL string `json:"pull_url,omitempty"`
	// Closed says the pull request was closed after this build.
	Closed bool `json:"closed,omitempty"`
	// Installation is the GitHub App installation the build's events came
	// from (0 with token auth): whoever shows the record outside needs it.
	Installation int64 `json:"installation,omitempty"`
	// Projected says the record is the build's one truth and a projector
	// shows it outside; records written before projectors have it unset
	// and are left as they are.
	Projected bool `json:"projected,omitempty"`
	// Shown is what the projector last showed of each part of the build,
	// keyed by test name ("" for the build's summary). Only the projector
	// writes it.
	Shown map[string]Shown `json:"shown,omitempty"`
	// ConfigError, when set, is why the build has no tests: its .yci.py
	// could not be evaluated. It is the summary's description, as an
	// error, and ConfigLogURL (the evaluation's log) its link.
	ConfigError  string `json:"config_error,omitempty"`
	ConfigLogURL string `json:"config_log_url,omitempty"`
	// Changes is what the tested change touches, as .yci.py's
	// changed_files() saw it; nil when the build did not compute it.
	Changes *Changes `json:"changes,omitempty"`
	// Base is the base commit the build tested the head merged into; nil
	// in records written before builds merged.
	Base *TestedBase `json:"base,omitempty"`
	// Tests are in the order .yci.py yielded them.
	Tests   []TestRecord `json:"tests"`
	Created time.Time    `json:"created"`
	Updated time.Time    `json:"updated"`
	// Revision is the record's revision in the bucket, 0 before it is
	// stored. Revisions of one record only grow.
	Revision uint64 `json:"-"`
}

// MaxRecordedChanges is how many changed paths a build record keeps: the
// summary and the build page show these and count the rest.
const MaxRecordedChanges = 100

// Changes is the set of paths a build's change touches (added, modified,
// deleted, and both names of a rename), sorted, as .yci.py saw it. A record
// keeps the first MaxRecordedChanges; Total counts them all.
type Changes struct {
	Files []string `json:"files,omitempty"`
	Total int      `json:"total"`
}

// TestedBase is what a build tested of its pull request's base branch.
// The verdict stands when the base moves on: only a push, a /retest or
// the merge queue builds again (rebuilding every open pull on every push
// to the base costs quadratically).
type TestedBase struct {
	// Ref is the branch ("main") and SHA its tip when the build fetched it.
	Ref string `json:"ref"`
	SHA string `json:"sha"`
	// Merged says the tests ran on the head merged into SHA (whose commit
	// is Merge); false when the head was tested alone (merging is off).
	// With nothing to merge (the head contains SHA), Merged is true and
	// Merge is the head.
	Merged bool   `json:"merged"`
	Merge  string `json:"merge,omitempty"`
	// Behind counts the base's commits the head lacked, which the merge
	// brought in.
	Behind int `json:"behind"`
	// Conflicts, when set, are the paths that did not merge: the build
	// ran no test.
	Conflicts []string `json:"conflicts,omitempty"`
	// Queued says the head is a merge group's: GitHub's merge queue
	// already made it from SHA (the group's base commit), so it is tested
	// as it is, never merged again, and its changes are counted from SHA.
	Queued bool `json:"queued,omitempty"`
}

// Test returns the test called name, or nil.
func (r *BuildRecord) Test(name string) *TestRecord {
	for i := range r.Tests {
		if r.Tests[i].Name == name {
			return &r.Tests[i]
		}
	}
	return nil
}

// AddTest returns the test called name, appending it queued when the
// record has none.
func (r *BuildRecord) AddTest(name string) *TestRecord {
	if t := r.Test(name); t != nil {
		return t
	}
	r.Tests = append(r.Tests, TestRecord{Name: name, State: TestQueued})
	return &r.Tests[len(r.Tests)-1]
}

// ErrNoRecord is returned by BuildRecord for a build that has none.
var ErrNoRecord = errors.New("no build record")

// ErrUnchanged, returned by a change given to UpdateBuild, says the record
// needs no change: nothing is stored, and UpdateBuild returns it wrapped.
var ErrUnchanged = errors.New("build record unchanged")

// UpdateBuild applies change to the record of build k (an empty record
// holding only k when there is none yet) and stores the result if nobody
// else changed the record meanwhile; otherwise it reads the record again
// and reapplies change, so change must be a function of the record alone
// and may run several times. An error from change is returned as it is,
// wrapped, and nothing is stored. It returns the record as stored. Safe
// for concurrent use from any number of boxes.
func (rs *Records) UpdateBuild(ctx context.Context, k BuildKey, change func(*BuildRecord) error) (BuildRecord, error) {
	if err := k.Validate(); err != nil {
		return BuildRecord{}, err
	}
	key := recordKey(k)
	for attempt := 1; attempt <= claimAttempts; attempt++ {
		rec, err := rs.loadRecord(ctx, key)
		if errors.Is(err, ErrNoRecord) {
			rec = BuildRecord{Key: k}
		} else if err != nil {
			return BuildRecord{}, fmt.Errorf("updating build record %s: %w", k, err)
		}
		if err := change(&rec); err != nil {
			return BuildRecord{}, fmt.Errorf("updating build record %s: %w", k, err)
		}
		rec.Version, rec.Key = Version, k
		rec.Updated = time.Now().UTC()
		if rec.Created.IsZero() {
			rec.Created = rec.Updated
		}
		rev, err := rs.storeRecord(ctx, key, rec)
		if err == nil {
			rec.Revision = rev
			return rec, nil
		}
		if !errors.Is(err, errConflict) {
			return BuildRecord{}, fmt.Errorf("updating build record %s: %w", k, err)
		}
		if err := pause.For(ctx, raceWait(attempt)); err != nil {
			return BuildRecord{}, fmt.Errorf("updating build record %s: %w", k, err)
		}
	}
	return BuildRecord{}, fmt.Errorf("updating build record %s: lost %d races in a row", k, claimAttempts)
}

// BuildRecord returns the record of build k, or an error wrapping
// ErrNoRecord when there is none.
func (rs *Records) BuildRecord(ctx context.Context, k BuildKey) (BuildRecord, error) {
	if err := k.Validate(); err != nil {
		return BuildRecord{}, err
	}
	rec, err := rs.loadRecord(ctx, recordKey(k))
	if err != nil {
		return BuildRecord{}, fmt.Errorf("reading build record %s: %w", k, err)
	}
	return rec, nil
}

// RecentBuilds returns up to n records of repo's builds, the most recently
// updated first. It reads every record of the repository once, in one
// pass over the bucket.
func (rs *Records) RecentBuilds(ctx context.Context, repo Repo, n int) ([]BuildRecord, error) {
	if repo.Owner == "" || repo.Name == "" {
		return nil, fmt.Errorf("repository %q: %w", repo.FullName(), ErrInvalidEvent)
	}
	recs, err := rs.scanRecords(ctx, recordPrefix(repo)+">")
	if err != nil {
		return nil, fmt.Errorf("listing builds of %s: %w", repo.FullName(), err)
	}
	slices.SortFunc(recs, func(a, b BuildRecord) int { return b.Updated.Compare(a.Updated) })
	if len(recs) > n {
		recs = recs[:n]
	}
	return recs, nil
}

// SetPullClosed marks every record of the pull request's builds closed
// (or open again), writing only the records that differ, and returns how
// many it changed. Many boxes may call it at once for the same pull.
func (rs *Records) SetPullClosed(ctx context.Context, repo Repo, pull int, closed bool) (int, error) {
	k := BuildKey{Repo: repo, Pull: pull, Build: 1}
	if err := k.Validate(); err != nil {
		return 0, err
	}
	recs, err := rs.scanRecords(ctx, recordPrefix(repo)+strconv.Itoa(pull)+".*")
	if err != nil {
		return 0, fmt.Errorf("listing builds of %s#%d: %w", repo.FullName(), pull, err)
	}
	changed := 0
	for _, rec := range recs {
		if rec.Closed == closed {
			continue
		}
		_, err := rs.UpdateBuild(ctx, rec.Key, func(r *BuildRecord) error {
			if r.Closed == closed {
				return ErrUnchanged
			}
			r.Closed = closed
			return nil
		})
		switch {
		case errors.Is(err, ErrUnchanged):
		case err != nil:
			return changed, err
		default:
			changed++
		}
	}
	return changed, nil
}

// scanRecords returns every record whose key matches filter, in one pass
// over the bucket. One filter subject: nats-server 2.9 has no
// multi-filter consumers.
func (rs *Records) scanRecords(ctx context.Context, filter string) ([]BuildRecord, error) {
	ctx, cancel := rs.callContext(ctx)
	defer cancel()
	w, err := rs.records.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer rs.stopWatch(w)
	var recs []BuildRecord
	for {
		var entry jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case entry = <-w.Updates():
		}
		if entry == nil {
			return recs, nil // every stored record has been delivered
		}
		rec, err := decodeRecord(entry)
		if err != nil {
			rs.log.Warn("skipping undecodable build record", "key", entry.Key(), "err", err)
			continue
		}
		recs = append(recs, rec)
	}
}

// WatchBuilds calls fn with every build record stored now and then with
// new revisions of any record, in order, one call at a time, until ctx
// ends; then it returns nil. The bucket keeps one revision per record, so
// a revision replaced before the server sent it is skipped, but the
// latest revision of every record always reaches fn. Revisions written while fn runs wait for it, so fn
// must be quick. A record that expires (RecordTTL) is not announced. The
// watch follows the server through reconnections; it returns an error
// only when it cannot start or the connection closes for good.
func (rs *Records) WatchBuilds(ctx context.Context, fn func(BuildRecord)) error {
	return rs.watch(ctx, "build.>", "build records", func(entry jetstream.KeyValueEntry) {
		rec, err := decodeRecord(entry)
		if err != nil {
			rs.log.Warn("skipping undecodable build record", "key", entry.Key(), "err", err)
			return
		}
		fn(rec)
	})
}

func (rs *Records) loadRecord(ctx context.Context, key string) (BuildRecord, error) {
	entry, err := rs.getEntry(ctx, key, ErrNoRecord)
	if err != nil {
		return BuildRecord{}, err
	}
	return decodeRecord(entry)
}

func decodeRecord(entry jetstream.KeyValueEntry) (BuildRecord, error) {
	var rec BuildRecord
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		return BuildRecord{}, fmt.Errorf("decoding %s: %w", entry.Key(), err)
	}
	if rec.Version > Version {
		return BuildRecord{}, fmt.Errorf("%s has version %d, newer than %d", entry.Key(), rec.Version, Version)
	}
	rec.Revision = entry.Revision()
	return rec, nil
}

// storeRecord writes rec if the key is still at rec.Revision (absent when
// 0) and returns the new revision; otherwise it returns errConflict.
func (rs *Records) storeRecord(ctx context.Context, key string, rec BuildRecord) (uint64, error) {
	return rs.putJSON(ctx, key, rec, rec.Revision)
}
