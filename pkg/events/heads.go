package events

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// headsPrefix is where new head commits are announced. It is plain NATS,
// outside the stream: an announcement only saves time (running tests of an
// older head stop early), and one that is missed costs nothing but that,
// because every test checks its pull's head before it starts.
const headsPrefix = "yci.head."

// HeadAnnouncement says that a pull request's head is now SHA, or that it
// closed: tests of any other head of it are stale.
type HeadAnnouncement struct {
	Repo   Repo   `json:"repo"`
	Number int    `json:"number"`
	SHA    string `json:"sha"`
	// Closed is set when the pull request closed; SHA is then its last head.
	Closed bool `json:"closed,omitempty"`
}

func headSubject(repo Repo, number int) string {
	return headsPrefix + repoTokens(repo) + "." + strconv.Itoa(number)
}

// AnnounceHead tells every worker that a pull request's head changed. It
// does not wait for anyone: see headsPrefix for why that is enough.
func (h *Heads) AnnounceHead(a HeadAnnouncement) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encoding head announcement: %w", err)
	}
	if err := h.nc.Publish(headSubject(a.Repo, a.Number), data); err != nil {
		return fmt.Errorf("announcing head of %s#%d: %w", a.Repo.FullName(), a.Number, err)
	}
	return nil
}

// WatchHeads calls fn, one call at a time, for every head announced from
// now until stop is called. Undecodable announcements are dropped.
func (h *Heads) WatchHeads(fn func(HeadAnnouncement)) (stop func(), err error) {
	sub, err := h.nc.Subscribe(headsPrefix+">", func(m *nats.Msg) {
		var a HeadAnnouncement
		if err := json.Unmarshal(m.Data, &a); err != nil {
			h.log.Warn("dropping undecodable head announcement", "subject", m.Subject, "err", err)
			return
		}
		fn(a)
	})
	if err != nil {
		return nil, fmt.Errorf("watching head announcements: %w", err)
	}
	return func() {
		if err := sub.Unsubscribe(); err != nil {
			h.log.Warn("unsubscribing from head announcements", "err", err)
		}
	}, nil
}
