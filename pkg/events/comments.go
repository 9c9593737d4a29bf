package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/yourci/yourci/pkg/pause"
)

// headSeen is the record of when YourCI first saw a head commit of a pull
// request, by the clock of the box that saw it.
type headSeen struct {
	At time.Time `json:"at"`
}

// headSeenKey is seen.<owner>.<repo>.<number>.<sha>.
func headSeenKey(repo Repo, pull int, sha string) string {
	return "seen." + EncodeToken(repo.Owner) + "." + EncodeToken(repo.Name) + "." + strconv.Itoa(pull) + "." + sha
}

// SeeHead records that head commit sha of a pull request is seen at now,
// unless it was seen before, and returns when it was first seen. Whoever
// sees a head first (a pull event's handler, the sweep's, a command's)
// writes the record, create-only, so every box agrees on one time and no
// later sighting moves it. Safe for concurrent use across boxes.
func (r *Registry) SeeHead(ctx context.Context, repo Repo, pull int, sha string, now time.Time) (time.Time, error) {
	if err := errors.Join(checkBuildKey(repo, pull, sha), ValidateSHA(sha)); err != nil {
		return time.Time{}, err
	}
	key := headSeenKey(repo, pull, sha)
	var rec headSeen
	if _, err := r.loadJSON(ctx, key, &rec); err != nil || !rec.At.IsZero() {
		return rec.At, err
	}
	err := r.storeJSON(ctx, key, headSeen{At: now.UTC()}, 0)
	if errors.Is(err, errConflict) {
		_, err = r.loadJSON(ctx, key, &rec)
		return rec.At, err
	}
	return now.UTC(), err
}

// CommandsDigest is a short hash of a comment's parsed commands: two texts
// of one comment with the same commands have the same digest.
func CommandsDigest(cmds []Command) string {
	data, err := json.Marshal(cmds)
	if err != nil {
		// A Command is strings and ints: it always encodes.
		panic(fmt.Sprintf("encoding commands: %v", err))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:12])
}

// commentClaim is the record of the message that runs one text of one
// comment's commands.
type commentClaim struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// commentKey is comment.<owner>.<repo>.<number>.<comment id>.<digest>.
func commentKey(repo Repo, pull int, comment int64, digest string) string {
	return "comment." + EncodeToken(repo.Owner) + "." + EncodeToken(repo.Name) + "." + strconv.Itoa(pull) + "." +
		strconv.FormatInt(comment, 10) + "." + digest
}

// ClaimComment claims the running of the commands whose CommandsDigest is
// digest, of comment id on a pull request, for claimant (the claiming
// message's id), and reports whether the claimant holds it: it made the
// claim now, or made it before (its own message delivered again). The
// record is created once and never changed, so a webhook delivered again
// under any delivery id, on any box, runs a comment's commands once, while
// an edit that changes the commands has a new digest and runs. Safe for
// concurrent use across boxes.
func (cs *Comments) ClaimComment(ctx context.Context, repo Repo, pull int, comment int64, digest, claimant string) (bool, error) {
	if err := errors.Join(repo.Validate(), ValidatePull(pull)); err != nil {
		return false, err
	}
	if comment < 1 || digest == "" || claimant == "" {
		return false, fmt.Errorf("claiming comment %d with digest %q for %q: %w", comment, digest, claimant, ErrInvalidEvent)
	}
	key := commentKey(repo, pull, comment, digest)
	err := cs.storeJSON(ctx, key, commentClaim{By: claimant, At: time.Now().UTC()}, 0)
	if !errors.Is(err, errConflict) {
		return err == nil, err
	}
	var rec commentClaim
	if _, err := cs.loadJSON(ctx, key, &rec); err != nil {
		return false, err
	}
	return rec.By == claimant, nil
}

// replyGrant is the record of the last reply YourCI allowed itself to one
// person on one pull request.
type replyGrant struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// replyKey is reply.<owner>.<repo>.<number>.<user>.
func replyKey(repo Repo, pull int, user string) string {
	return "reply." + EncodeToken(repo.Owner) + "." + EncodeToken(repo.Name) + "." + strconv.Itoa(pull) + "." + EncodeToken(user)
}

// AllowReply decides whether claimant (one comment's handling) may post a
// refusal reply to user on a pull request at now: yes when no reply was
// allowed to them there within every before now, or when the last one
// allowed was this claimant's own (its message delivered again, the reply
// not yet posted). A yes is recorded with compare-and-set, so every box
// together replies at most once per every. Safe for concurrent use.
func (cs *Comments) AllowReply(ctx context.Context, repo Repo, pull int, user, claimant string, now time.Time, every time.Duration) (bool, error) {
	if err := errors.Join(repo.Validate(), ValidatePull(pull), ValidateOwner(user)); err != nil {
		return false, err
	}
	key := replyKey(repo, pull, user)
	for attempt := 1; attempt <= claimAttempts; attempt++ {
		var rec replyGrant
		rev, err := cs.loadJSON(ctx, key, &rec)
		if err != nil {
			return false, err
		}
		switch {
		case rev != 0 && rec.By == claimant:
			return true, nil
		case rev != 0 && now.Sub(rec.At) < every:
			return false, nil
		}
		err = cs.storeJSON(ctx, key, replyGrant{By: claimant, At: now.UTC()}, rev)
		if !errors.Is(err, errConflict) {
			return err == nil, err
		}
		if err := pause.For(ctx, raceWait(attempt)); err != nil {
			return false, fmt.Errorf("allowing a reply to %s on %s#%d: %w", user, repo.FullName(), pull, err)
		}
	}
	return false, fmt.Errorf("allowing a reply to %s on %s#%d: lost %d races in a row", user, repo.FullName(), pull, claimAttempts)
}
