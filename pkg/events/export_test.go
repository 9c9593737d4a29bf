package events

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStreamOf gives tests the JetStream context under b, to inspect the
// stream and consumers it set up; the Bus itself exposes none.
func JetStreamOf(b *Bus) jetstream.JetStream { return b.js }

// AnnounceDueEarly makes a Bus made with o announce every handed-back
// test job as due d before the server delivers it again, as a server too
// busy to process a Nak at once does.
func AnnounceDueEarly(o *Options, d time.Duration) { o.dueEarly = d }
