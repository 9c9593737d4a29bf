package natsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/yourci/yourci/pkg/envflag"
)

// Endpoint is how a YourCI command reaches JetStream: the server or cluster
// at URL, or, when URL is empty, this box's embedded default on Port with
// its files under Store (see Local).
type Endpoint struct {
	URL   string
	Store string
	Port  int
	// Credentials is the file of the embedded JetStream's user and
	// password (see LoadOrCreateCredentials); empty means the default
	// that CredentialsFile gives.
	Credentials string
	// Replicas is how many copies of the stream and buckets a cluster
	// keeps; every process must say the same (each creates or updates
	// them at start).
	Replicas int
}

// AddFlags registers -nats, -nats-store, -nats-port and -nats-credentials,
// with NATS_URL, YCI_NATS_STORE, YCI_NATS_PORT and YCI_NATS_CREDENTIALS as
// their environment fallbacks, the same in every command.
func (e *Endpoint) AddFlags(fs *envflag.Set) {
	fs.StringVar(&e.URL, "nats", "", "JetStream server or cluster `URL`; empty runs or joins the embedded one")
	fs.Env("nats", "NATS_URL")
	fs.StringVar(&e.Store, "nats-store", ".yci/nats", "file store `DIR` of the embedded JetStream")
	fs.Env("nats-store", "YCI_NATS_STORE")
	fs.IntVar(&e.Port, "nats-port", DefaultLocalPort, "loopback port of the embedded JetStream")
	fs.Env("nats-port", "YCI_NATS_PORT")
	fs.StringVar(&e.Credentials, "nats-credentials", "", "`FILE` of the embedded JetStream's user and password, created 0600 on first start (default ~/.config/yourci/nats-PORT.credentials)")
	fs.Env("nats-credentials", "YCI_NATS_CREDENTIALS")
	fs.IntVar(&e.Replicas, "nats-replicas", 1, "copies of the stream and buckets on a NATS cluster (3 on a three-node cluster), the same for every process")
	fs.Env("nats-replicas", "YCI_NATS_REPLICAS")
}

// Validate reports every problem at once; an endpoint with a URL needs
// nothing else.
func (e Endpoint) Validate() error {
	var errs []error
	if e.Replicas < 0 || e.Replicas > 5 {
		errs = append(errs, fmt.Errorf("-nats-replicas %d must be between 1 and 5", e.Replicas))
	}
	if e.URL != "" {
		return errors.Join(errs...)
	}
	if e.Store == "" {
		errs = append(errs, errors.New("-nats-store is required when NATS_URL is empty (the embedded JetStream keeps its files there)"))
	}
	if e.Port != RandomPort && (e.Port < 1 || e.Port > 65535) {
		errs = append(errs, fmt.Errorf("-nats-port %d is not a port", e.Port))
	}
	return errors.Join(errs...)
}

// Open returns the URL to connect to, credentials included: print it only
// through events.Redact. Without a URL it joins or starts the embedded
// JetStream (see Local), a relative Store being taken from base; the
// returned server is nil unless this call started one, which the caller
// then shuts down.
func (e Endpoint) Open(ctx context.Context, base string, log *slog.Logger) (string, *Server, error) {
	if e.URL != "" {
		return e.URL, nil, nil
	}
	store, err := e.store(base)
	if err != nil {
		return "", nil, err
	}
	creds, err := e.CredentialsFile(store)
	if err != nil {
		return "", nil, err
	}
	return Local(ctx, LocalOptions{StoreDir: store, Port: e.Port, CredentialsFile: creds, Logger: log.With("component", "nats")})
}

// Join is Open for a command that must never start a JetStream of its own
// (a sweep or a cleanup run from cron): without a URL it joins the
// embedded one another process runs on the box, or fails with an error
// wrapping ErrNoLocal.
func (e Endpoint) Join(base string) (string, error) {
	if e.URL != "" {
		return e.URL, nil
	}
	store, err := e.store(base)
	if err != nil {
		return "", err
	}
	creds, err := e.CredentialsFile(store)
	if err != nil {
		return "", err
	}
	return Join(e.Port, creds)
}

func (e Endpoint) store(base string) (string, error) {
	if filepath.IsAbs(e.Store) {
		return e.Store, nil
	}
	abs, err := filepath.Abs(filepath.Join(base, e.Store))
	if err != nil {
		return "", fmt.Errorf("resolving -nats-store: %w", err)
	}
	return abs, nil
}

// CredentialsFile is where the embedded JetStream's credentials are: the
// -nats-credentials file when given; else, for a server on a random port
// (which no other process can join), "credentials" in its store; else
// yourci/nats-PORT.credentials in the user's configuration directory
// ($XDG_CONFIG_HOME or ~/.config), where every YourCI process of this user
// on the box finds it, whatever its working directory.
func (e Endpoint) CredentialsFile(store string) (string, error) {
	switch {
	case e.Credentials != "":
		return filepath.Abs(e.Credentials)
	case e.Port == RandomPort:
		return filepath.Join(store, "credentials"), nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding where the embedded JetStream's credentials are: %w; set -nats-credentials (YCI_NATS_CREDENTIALS)", err)
	}
	return filepath.Join(dir, "yourci", fmt.Sprintf("nats-%d.credentials", e.Port)), nil
}
