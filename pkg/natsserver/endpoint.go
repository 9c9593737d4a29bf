package natsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// Replicas is how many copies of the stream and buckets a cluster
	// keeps; every process must say the same (each creates or updates
	// them at start).
	Replicas int
}

// AddFlags registers -nats, -nats-store and -nats-port, with NATS_URL,
// YCI_NATS_STORE and YCI_NATS_PORT as their environment fallbacks, the
// same in every command.
func (e *Endpoint) AddFlags(fs *envflag.Set) {
	fs.StringVar(&e.URL, "nats", "", "JetStream server or cluster `URL`; empty runs or joins the embedded one")
	fs.Env("nats", "NATS_URL")
	fs.StringVar(&e.Store, "nats-store", ".yci/nats", "file store `DIR` of the embedded JetStream")
	fs.Env("nats-store", "YCI_NATS_STORE")
	fs.IntVar(&e.Port, "nats-port", DefaultLocalPort, "loopback port of the embedded JetStream")
	fs.Env("nats-port", "YCI_NATS_PORT")
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

// Open returns the URL to connect to. Without a URL it joins or starts the
// embedded JetStream, a relative Store being taken from base; the returned
// server is nil unless this call started one, which the caller then shuts
// down.
func (e Endpoint) Open(ctx context.Context, base string, log *slog.Logger) (string, *Server, error) {
	if e.URL != "" {
		return e.URL, nil, nil
	}
	store := e.Store
	if !filepath.IsAbs(store) {
		abs, err := filepath.Abs(filepath.Join(base, store))
		if err != nil {
			return "", nil, fmt.Errorf("resolving -nats-store: %w", err)
		}
		store = abs
	}
	return Local(ctx, store, e.Port, log.With("component", "nats"))
}
