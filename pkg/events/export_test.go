package events

import "github.com/nats-io/nats.go/jetstream"

// JetStreamOf gives tests the JetStream context under b, to inspect the
// stream and consumers it set up; the Bus itself exposes none.
func JetStreamOf(b *Bus) jetstream.JetStream { return b.js }
