package natsserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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

// ErrNoLocal is wrapped by Join's error when no JetStream answers on the
// box's loopback port.
var ErrNoLocal = errors.New("no embedded JetStream answers")

// LocalOptions say where this box's default JetStream is and what it
// needs: its port on 127.0.0.1, its store, and the file of its credentials.
type LocalOptions struct {
	StoreDir        string
	Port            int
	CredentialsFile string
	// Logger receives the server's own log lines; nil discards them.
	Logger *slog.Logger
}

// Local gives the URL, credentials included, of this box's default
// JetStream. When a NATS server already answers on 127.0.0.1:port (another
// YourCI process started it), Local joins it with the credentials in the
// file and returns a nil *Server; otherwise it starts an embedded server
// there, with its files under StoreDir and the credentials of the file
// (created on first start), which the caller must shut down. Two
// processes racing to start it end up sharing one.
func Local(ctx context.Context, opts LocalOptions) (string, *Server, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.Port))
	if Answering(addr) {
		url, err := join(addr, opts.CredentialsFile)
		return url, nil, err
	}
	creds, err := LoadOrCreateCredentials(opts.CredentialsFile)
	if err != nil {
		return "", nil, err
	}
	srv, err := Start(ctx, Options{StoreDir: opts.StoreDir, Port: opts.Port, Logger: opts.Logger, Credentials: &creds})
	if err != nil {
		if Answering(addr) {
			url, err := join(addr, opts.CredentialsFile)
			return url, nil, err
		}
		return "", nil, fmt.Errorf("starting the embedded JetStream on %s: %w", addr, err)
	}
	return creds.URL(net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port()))), srv, nil
}

// Join gives the URL, credentials included, of the JetStream another
// YourCI process runs on 127.0.0.1:port, and never starts one: its error
// wraps ErrNoLocal when nothing answers there.
func Join(port int, credentialsFile string) (string, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if !Answering(addr) {
		return "", fmt.Errorf("%w on %s, and NATS_URL is not set: start the worker (or receiver) first, or set NATS_URL", ErrNoLocal, addr)
	}
	return join(addr, credentialsFile)
}

func join(addr, credentialsFile string) (string, error) {
	creds, err := ReadCredentials(credentialsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("a NATS server answers on %s but its credentials file %s does not exist (was it started with another -nats-credentials, or by something other than YourCI?)", addr, credentialsFile)
	}
	if err != nil {
		return "", err
	}
	return creds.URL(addr), nil
}

// answerWait bounds Answering: a NATS server on loopback greets a client
// in milliseconds, and a command that finds something else on its port
// must not wait long to say so.
const answerWait = 500 * time.Millisecond

// Answering reports whether a NATS server greets a client at addr (its INFO
// line) within half a second.
func Answering(addr string) bool {
	_, ok := Greeting(addr)
	return ok
}

// Greeting is the name a NATS server at addr gives in its INFO line, if one
// greets a client there within half a second; the name is empty when the
// server has none.
func Greeting(addr string) (name string, ok bool) {
	conn, err := net.DialTimeout("tcp", addr, answerWait)
	if err != nil {
		return "", false
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(answerWait)); err != nil {
		return "", false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	info, ok := strings.CutPrefix(line, "INFO ")
	if err != nil || !ok {
		return "", false
	}
	var server struct {
		Name string `json:"server_name"`
	}
	// An INFO line that is not JSON still greets.
	_ = json.Unmarshal([]byte(info), &server)
	return server.Name, true
}
