package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/envflag"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/webhook"
)

// githubTimeout is how long GitHub waits for a webhook answer; an
// acknowledgement slower than this reaches nobody.
const githubTimeout = 10 * time.Second

// Options configure a receiver. Every flag falls back to an environment
// variable, named as in the seed design where it had one. The webhook
// secret itself is read only from the environment or a file, never from a
// flag, so it does not show in the process list.
type Options struct {
	// Listen is the HTTP address; ":0" picks a free port (see Addr).
	Listen string
	// WebhookSecret and WebhookSecretFile give the secret GitHub signs
	// deliveries with; exactly one is required.
	WebhookSecret     string
	WebhookSecretFile string
	// NATS is the JetStream server or cluster, or the embedded default.
	NATS natsserver.Endpoint
	// ApprovalLabel is the label whose addition to a pull request triggers
	// a build; empty disables the trigger.
	ApprovalLabel string
	// PublishTimeout bounds the wait for JetStream's acknowledgement of
	// one event, the tries repeated while a NATS cluster elects a leader
	// included; it must leave room within GitHub's 10 s.
	PublishTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight deliveries may take to
	// finish after SIGTERM.
	ShutdownTimeout time.Duration
	// MaxInflightBytes caps the delivery bodies held in memory at once,
	// across all requests (see webhook.Budget).
	MaxInflightBytes int64
	JSONLog          bool
	// LogLevel is the least level logged (-log-level).
	LogLevel slog.Level
	// Version prints the version and exits.
	Version bool
}

const usage = `Usage: receiver [flags]

Receives GitHub pull_request and merge_group webhooks (and comment commands
and re-run buttons) at POST /webhook, checks their
X-Hub-Signature-256, and queues a build on JetStream before answering.
Also serves GET /healthz (503 while NATS is unreachable) and GET /metrics.

Environment only:
  GITHUB_WEBHOOK_SECRET   the secret GitHub signs deliveries with (or set
                          -webhook-secret-file); without one the receiver
                          refuses to start

Flags:
`

// parseOptions reads flags with their environment fallbacks. It returns
// flag.ErrHelp after printing the help for -h.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (Options, error) {
	o := Options{WebhookSecret: getenv("GITHUB_WEBHOOK_SECRET")}
	fs := envflag.New("receiver")
	fs.SetOutput(stderr)
	fs.StringVar(&o.Listen, "listen", ":8080", "HTTP `ADDR` serving /webhook, /healthz and /metrics")
	fs.Env("listen", "YCI_LISTEN")
	fs.StringVar(&o.WebhookSecretFile, "webhook-secret-file", "", "`FILE` holding the webhook secret (one trailing newline is ignored)")
	fs.Env("webhook-secret-file", "GITHUB_WEBHOOK_SECRET_FILE")
	o.NATS.AddFlags(fs)
	fs.StringVar(&o.ApprovalLabel, "approval-label", webhook.DefaultApprovalLabel, "pull request `LABEL` whose addition triggers a build; empty disables")
	fs.Env("approval-label", "YCI_APPROVAL_LABEL")
	fs.DurationVar(&o.PublishTimeout, "publish-timeout", webhook.DefaultPublishTimeout, "longest wait for JetStream to acknowledge an event, retries during a NATS leader election included (under GitHub's 10s)")
	fs.Env("publish-timeout", "YCI_PUBLISH_TIMEOUT")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight deliveries may finish after SIGTERM")
	fs.Env("shutdown-timeout", "YCI_SHUTDOWN_TIMEOUT")
	fs.Int64Var(&o.MaxInflightBytes, "max-inflight-bytes", webhook.DefaultMaxInflightBytes, "`BYTES` of delivery bodies held in memory at once; past it, deliveries get 503 with Retry-After")
	fs.Env("max-inflight-bytes", "YCI_MAX_INFLIGHT_BYTES")
	fs.JSONLogVar(&o.JSONLog)
	fs.LogLevelVar(&o.LogLevel)
	fs.BoolVar(&o.Version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return o, fs.Parse(args, getenv)
}

// Validate reports every problem at once. It reads the secret file, so a
// receiver that passes Validate has a secret to check deliveries with.
func (o Options) Validate() error {
	var errs []error
	if _, err := o.secret(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("-listen %q is not a host:port address: %w", o.Listen, err))
	}
	if err := o.NATS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.PublishTimeout <= 0 || o.PublishTimeout >= githubTimeout {
		errs = append(errs, fmt.Errorf("-publish-timeout %v must be positive and under GitHub's %v", o.PublishTimeout, githubTimeout))
	}
	if _, err := webhook.NewBudget(o.MaxInflightBytes); err != nil {
		errs = append(errs, fmt.Errorf("-max-inflight-bytes: %w", err))
	}
	if o.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("-shutdown-timeout %v must be positive", o.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// secret returns the webhook secret from the environment or the file.
func (o Options) secret() (string, error) {
	switch {
	case o.WebhookSecret != "" && o.WebhookSecretFile != "":
		return "", errors.New("both GITHUB_WEBHOOK_SECRET and -webhook-secret-file are set; give one")
	case o.WebhookSecret != "":
		return o.WebhookSecret, nil
	case o.WebhookSecretFile == "":
		return "", errors.New("no webhook secret: set GITHUB_WEBHOOK_SECRET or -webhook-secret-file (GITHUB_WEBHOOK_SECRET_FILE); the receiver never accepts unsigned webhooks")
	}
	b, err := os.ReadFile(o.WebhookSecretFile)
	if err != nil {
		return "", fmt.Errorf("reading the webhook secret: %w", err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("webhook secret file %s is empty", o.WebhookSecretFile)
	}
	return s, nil
}
