package events

import (
	"strconv"
	"strings"
	"time"
)

// duePrefix is where a test job handed back with a delay is announced:
// yci.due.<owner>.<repo>, the delay in nanoseconds as its data. It is
// plain NATS, outside the stream, like the head announcements: the server
// delivers such a job again when its delay is over without telling
// anyone, and an idle worker waits for notifications rather than asking
// the server what became deliverable. One that is missed (a reconnect)
// costs only time: a worker looks at the stream again after a reconnect,
// and every AckWait while jobs are stored.
const duePrefix = "yci.due."

// dueSlack is how long after an announced delay a worker looks: the
// server's own clock starts when it receives the Nak, a little after the
// announcement leaves.
const dueSlack = 20 * time.Millisecond

// announceDue tells every worker that the test job on subject, just handed
// back, is deliverable again after delay. Other subjects are not
// announced. A failed announcement is logged: it only costs time.
func (s *store) announceDue(subject string, delay time.Duration) {
	rest, ok := strings.CutPrefix(subject, testPrefix)
	if !ok {
		return
	}
	delay = max(delay-s.opts.dueEarly, 0)
	if err := s.nc.Publish(duePrefix+rest, []byte(strconv.FormatInt(int64(delay), 10))); err != nil {
		s.log.Warn("announcing a test job handed back", "subject", subject, "err", err)
	}
}

// dueOf decodes a due announcement: the repository and the delay.
func dueOf(subject string, data []byte) (Repo, time.Duration, bool) {
	rest, ok := strings.CutPrefix(subject, duePrefix)
	if !ok {
		return Repo{}, 0, false
	}
	r, ok := repoOfTokens(rest)
	if !ok {
		return Repo{}, 0, false
	}
	n, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil || n < 0 {
		return Repo{}, 0, false
	}
	return r, time.Duration(n), true
}
