package natsserver

import (
	"context"
	"testing"
	"time"
)

// TestEmbeddedServerServesNoMonitoring: the embedded JetStream's HTTP
// monitoring would show stream and consumer configuration and user names
// to anything on the box, tests included; it must listen nowhere.
func TestEmbeddedServerServesNoMonitoring(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{StoreDir: t.TempDir(), Port: RandomPort})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if addr := s.ns.MonitorAddr(); addr != nil {
		t.Errorf("embedded server serves monitoring on %s", addr)
	}
}
