package webhook

import (
	"context"
	"encoding/json"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// HeadRecorder keeps each pull request's latest head, ordered by the pull
// request's updated_at, so that workers learn whether a head was
// superseded (or the pull closed) without asking GitHub; events.Heads has
// it.
type HeadRecorder interface {
	RecordHead(ctx context.Context, repo events.Repo, pull int, r events.HeadRecord) (events.HeadRecord, error)
}

// WithHeadRecorder makes the handler record the head of every pull event
// before publishing it, and of every pull request that closed. A failed
// or slow record (it has a quarter of the publish timeout) is logged and
// the event published anyway: a record is only ever
// trusted when it is newer than what a worker knows, so one missing costs
// at most the time of running a superseded head's tests.
func WithHeadRecorder(r HeadRecorder) Option { return func(h *handler) { h.recorder = r } }

// pullPart is a delivery's pull_request: the fields YourCI reads, decoded
// with the rest of the delivery, and the object as delivered (raw), which
// the event carries to .yci.py and decodePull cuts from the body.
type pullPart struct {
	pullFields
	raw json.RawMessage
}

type pullFields struct {
	Number int  `json:"number"`
	Draft  bool `json:"draft"`
	Head   struct {
		SHA string `json:"sha"`
	} `json:"head"`
	UpdatedAt time.Time `json:"updated_at"`
}

// carried is the pull request the event carries: the delivered object,
// unless it is larger than events.MaxPullLen (the worker then reads it).
func (p pullPart) carried() json.RawMessage {
	if len(p.raw) > events.MaxPullLen {
		return nil
	}
	return p.raw
}

// headRecordShare: the head record may use at most this part of the
// publish timeout (2 s of the default 8 s). It is a hint, while the
// publish is what the answer promises: on a NATS cluster the bucket it
// goes to can be electing its leader, and a record retried until the
// shared deadline left the publish no time, so the webhook was refused.
const headRecordShare = 4

// recordHead records ev's head, when the handler records heads and the
// delivery said when the pull request was updated, within its share of
// ctx's time.
func (h *handler) recordHead(ctx context.Context, ev events.PullEvent, closed bool) {
	if h.recorder == nil || ev.PullUpdatedAt.IsZero() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, h.publishTimeout/headRecordShare)
	defer cancel()
	rec := events.HeadRecord{SHA: ev.HeadSHA, Closed: closed, UpdatedAt: ev.PullUpdatedAt}
	if _, err := h.recorder.RecordHead(ctx, ev.Repo, ev.Number, rec); err != nil {
		h.log.Warn("recording the pull request's head", "repo", ev.Repo.FullName(), "pull", ev.Number, "sha", ev.HeadSHA, "err", err)
	}
}
