package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/pause"
)

// HeadSummary is what the `yci` summary of one head commit shows before a
// build of it does: that it needs approval, that it was approved, that
// preparing it failed and is retried, or that preparing it was given up.
// Handlers change it (UpdateHeadSummary) and write nothing to GitHub; the
// projector shows it, and keeps what it showed in Shown, until a build of
// the head takes over (TakenBy): from then on the build record's summary
// is the head's `yci`.
//
// It is a record of its own, one per head commit, because none other
// fits: a head that needs approval never gets a build number, nor does
// one whose preparation fails before the claim, so the build record does
// not exist yet; and the head record (HeadRecord) is per pull request,
// written by the receiver on every delivery and never expiring, while a
// summary is per commit, carries the projector's marks and should go
// with the build records (RecordTTL). It lives in the record bucket under
// summary.<owner>.<repo>.<pull>.<sha>.
type HeadSummary struct {
	Version int    `json:"v"`
	Repo    Repo   `json:"repo"`
	Pull    int    `json:"pull"`
	SHA     string `json:"sha"`
	// Installation is the GitHub App installation to show it through (0
	// with token auth).
	Installation int64 `json:"installation,omitempty"`
	// State is the commit status state to show, "pending" or "error";
	// empty while there is nothing to show (a build took over first).
	State       string `json:"state,omitempty"`
	Description string `json:"description,omitempty"`
	// TargetURL is the link, such as the head's preparation log; empty
	// for none.
	TargetURL string `json:"target_url,omitempty"`
	// For is the build the state is about, 0 before a build number was
	// claimed.
	For int `json:"for,omitempty"`
	// Approved says someone approved the head: a request for approval
	// that arrives later (from a delivery handled meanwhile) changes
	// nothing.
	Approved bool `json:"approved,omitempty"`
	// TakenBy is the latest build whose record's summary took over the
	// head's `yci`, 0 while none did. Only the projector sets it, before
	// it first shows that build's summary.
	TakenBy int `json:"taken_by,omitempty"`
	// Shown is what the projector last showed of it; nil before anything
	// was. Only the projector writes it.
	Shown   *Shown    `json:"shown,omitempty"`
	Updated time.Time `json:"updated"`
	// Revision is the record's revision in the bucket, 0 before it is
	// stored.
	Revision uint64 `json:"-"`
}

// Visible reports whether the projector shows h: it has a state, and no
// build took over since, unless the state is about a newer build than the
// one that did (a rebuild whose preparation fails).
func (h HeadSummary) Visible() bool {
	return h.State != "" && (h.TakenBy == 0 || h.For > h.TakenBy)
}

// Set makes h show state, description and link, about build n (0 before
// a build number was claimed), and reports whether it did: once a build
// took over, word about that build or an older attempt (a delivery
// handled late) changes nothing, so GitHub never goes back from a build's
// summary to what came before it.
func (h *HeadSummary) Set(n int, state, description, targetURL string) bool {
	if h.TakenBy != 0 && n <= h.TakenBy {
		return false
	}
	h.For, h.State, h.Description, h.TargetURL = n, state, description, targetURL
	return true
}

// TakeOver records that build n's summary shows the head from now on, and
// reports whether that changed h.
func (h *HeadSummary) TakeOver(n int) bool {
	if h.TakenBy >= n {
		return false
	}
	h.TakenBy = n
	return true
}

// HeadKey names one head commit of a pull request: the key of its
// HeadSummary.
type HeadKey struct {
	Repo Repo
	Pull int
	SHA  string
}

// Validate refuses a key that names no head commit.
func (k HeadKey) Validate() error {
	return errors.Join(k.Repo.Validate(), ValidatePull(k.Pull), ValidateSHA(k.SHA))
}

// String is "owner/repo#pull@sha7", for logs and errors.
func (k HeadKey) String() string {
	return k.Repo.FullName() + "#" + strconv.Itoa(k.Pull) + "@" + ShortSHA(k.SHA)
}

// Key is h's HeadKey.
func (h HeadSummary) Key() HeadKey { return HeadKey{Repo: h.Repo, Pull: h.Pull, SHA: h.SHA} }

const headSummaryPrefix = "summary."

func headSummaryKey(k HeadKey) string {
	return headSummaryPrefix + repoTokens(k.Repo) + "." + strconv.Itoa(k.Pull) + "." + k.SHA
}

// ErrNoHeadSummary is returned by HeadSummary for a head that has none.
var ErrNoHeadSummary = errors.New("no head summary")

// UpdateHeadSummary applies change to head k's summary (an empty one
// holding only k when there is none) and stores it under compare-and-set,
// as UpdateBuild does for build records: change may run several times and
// must depend on the summary alone; an error from it, ErrUnchanged
// included, stores nothing and is returned wrapped. It returns the
// summary as stored. Safe for concurrent use from any number of boxes.
func (hs *HeadSummaries) UpdateHeadSummary(ctx context.Context, k HeadKey, change func(*HeadSummary) error) (HeadSummary, error) {
	if err := k.Validate(); err != nil {
		return HeadSummary{}, err
	}
	key := headSummaryKey(k)
	for attempt := 1; attempt <= claimAttempts; attempt++ {
		h, err := hs.loadHeadSummary(ctx, key)
		if errors.Is(err, ErrNoHeadSummary) {
			h = HeadSummary{}
		} else if err != nil {
			return HeadSummary{}, fmt.Errorf("updating head summary %s: %w", k, err)
		}
		h.Repo, h.Pull, h.SHA = k.Repo, k.Pull, k.SHA
		if err := change(&h); err != nil {
			return HeadSummary{}, fmt.Errorf("updating head summary %s: %w", k, err)
		}
		h.Version, h.Updated = Version, time.Now().UTC()
		h.Repo, h.Pull, h.SHA = k.Repo, k.Pull, k.SHA
		rev, err := hs.storeHeadSummary(ctx, key, h)
		if err == nil {
			h.Revision = rev
			return h, nil
		}
		if !errors.Is(err, errConflict) {
			return HeadSummary{}, fmt.Errorf("updating head summary %s: %w", k, err)
		}
		if err := pause.For(ctx, raceWait(attempt)); err != nil {
			return HeadSummary{}, fmt.Errorf("updating head summary %s: %w", k, err)
		}
	}
	return HeadSummary{}, fmt.Errorf("updating head summary %s: lost %d races in a row", k, claimAttempts)
}

// HeadSummary returns head k's summary, or an error wrapping
// ErrNoHeadSummary when there is none.
func (hs *HeadSummaries) HeadSummary(ctx context.Context, k HeadKey) (HeadSummary, error) {
	if err := k.Validate(); err != nil {
		return HeadSummary{}, err
	}
	h, err := hs.loadHeadSummary(ctx, headSummaryKey(k))
	if err != nil {
		return HeadSummary{}, fmt.Errorf("reading head summary %s: %w", k, err)
	}
	return h, nil
}

// WatchHeadSummaries is WatchBuilds for head summaries: fn gets every
// summary stored now, then every new revision, one call at a time, until
// ctx ends.
func (hs *HeadSummaries) WatchHeadSummaries(ctx context.Context, fn func(HeadSummary)) error {
	return hs.watch(ctx, headSummaryPrefix+">", "head summaries", func(entry jetstream.KeyValueEntry) {
		h, err := decodeHeadSummary(entry)
		if err != nil {
			hs.log.Warn("skipping undecodable head summary", "key", entry.Key(), "err", err)
			return
		}
		fn(h)
	})
}

func (hs *HeadSummaries) loadHeadSummary(ctx context.Context, key string) (HeadSummary, error) {
	entry, err := hs.getEntry(ctx, key, ErrNoHeadSummary)
	if err != nil {
		return HeadSummary{}, err
	}
	return decodeHeadSummary(entry)
}

func decodeHeadSummary(entry jetstream.KeyValueEntry) (HeadSummary, error) {
	var h HeadSummary
	if err := json.Unmarshal(entry.Value(), &h); err != nil {
		return HeadSummary{}, fmt.Errorf("decoding %s: %w", entry.Key(), err)
	}
	if h.Version > Version {
		return HeadSummary{}, fmt.Errorf("%s has version %d, newer than %d", entry.Key(), h.Version, Version)
	}
	h.Revision = entry.Revision()
	return h, nil
}

// storeHeadSummary writes h if the key is still at h.Revision (absent
// when 0) and returns the new revision; otherwise errConflict.
func (hs *HeadSummaries) storeHeadSummary(ctx context.Context, key string, h HeadSummary) (uint64, error) {
	return hs.putJSON(ctx, key, h, h.Revision)
}
