package events

// Connected reports whether the connection to NATS is up right now, for
// health checks: jobs cannot be published or received while it is down.
func (b *Bus) Connected() bool { return b.nc.IsConnected() }
