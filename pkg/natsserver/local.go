package natsserver

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// DefaultLocalPort is where the default, embedded JetStream listens, so
// that a receiver, workers and a reconcile sweep started on one box without
// NATS_URL find each other: NATS's own standard port, on loopback only.
const DefaultLocalPort = 4222

// Local gives the URL of this box's default JetStream. When a NATS server
// already answers on 127.0.0.1:port (another YourCI process started it),
// Local uses it and returns a nil *Server; otherwise it starts an embedded
// server there, with its files under storeDir, which the caller must shut
// down. Two processes racing to start it end up sharing one.
func Local(ctx context.Context, storeDir string, port int, log *slog.Logger) (string, *Server, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	url := "nats://" + addr
	if Answering(addr) {
		return url, nil, nil
	}
	srv, err := Start(ctx, Options{StoreDir: storeDir, Port: port, Logger: log})
	if err != nil {
		if Answering(addr) {
			return url, nil, nil
		}
		return "", nil, fmt.Errorf("starting the embedded JetStream on %s: %w", addr, err)
	}
	return srv.URL(), srv, nil
}

// Answering reports whether a NATS server greets a client at addr (its INFO
// line) within a second.
func Answering(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "INFO ")
}
