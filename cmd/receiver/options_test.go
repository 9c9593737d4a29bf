package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/pause"
	"github.com/yourci/yourci/pkg/webhook"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	defaults := Options{
		Listen: ":8080", NATS: natsserver.Endpoint{Store: ".yci/nats", Port: natsserver.DefaultLocalPort, Replicas: 1},
		ApprovalLabel: "ok-to-test", PublishTimeout: 8 * time.Second, ShutdownTimeout: 15 * time.Second,
		MaxInflightBytes: webhook.DefaultMaxInflightBytes,
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(o *Options)
	}{
		{name: "defaults", want: func(*Options) {}},
		{name: "environment_fills_options",
			env: map[string]string{
				"YCI_LISTEN": "127.0.0.1:9000", "NATS_URL": "nats://q:4222", "GITHUB_WEBHOOK_SECRET": "s3cret",
				"GITHUB_WEBHOOK_SECRET_FILE": "/run/secret", "YCI_PUBLISH_TIMEOUT": "3s", "YCI_APPROVAL_LABEL": "safe-to-test",
				"YCI_MAX_INFLIGHT_BYTES": "16777216", "YCI_NATS_CREDENTIALS": "/etc/yourci/nats.credentials",
			},
			want: func(o *Options) {
				o.Listen, o.NATS.URL, o.WebhookSecret, o.WebhookSecretFile = "127.0.0.1:9000", "nats://q:4222", "s3cret", "/run/secret"
				o.PublishTimeout, o.ApprovalLabel = 3*time.Second, "safe-to-test"
				o.MaxInflightBytes, o.NATS.Credentials = 16<<20, "/etc/yourci/nats.credentials"
			}},
		{name: "flags_win_over_environment",
			args: []string{"-listen", "127.0.0.1:9001", "-shutdown-timeout", "1m", "-approval-label="},
			env:  map[string]string{"YCI_LISTEN": "127.0.0.1:9000", "YCI_SHUTDOWN_TIMEOUT": "2s"},
			want: func(o *Options) { o.Listen, o.ShutdownTimeout, o.ApprovalLabel = "127.0.0.1:9001", time.Minute, "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseOptions(tt.args, env(tt.env), &bytes.Buffer{})
			if err != nil {
				t.Fatalf("parseOptions: %v", err)
			}
			want := defaults
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseOptionsRefusesBadValues(t *testing.T) {
	t.Parallel()
	_, err := parseOptions(nil, env(map[string]string{"YCI_PUBLISH_TIMEOUT": "soon", "YCI_NATS_PORT": "many"}), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "YCI_PUBLISH_TIMEOUT") || !strings.Contains(err.Error(), "YCI_NATS_PORT") {
		t.Errorf("parseOptions error %v, want both bad variables named", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatalf("writing %s: %v", p, err)
		}
		return p
	}
	withNewline, empty := write("secret", "from-file\n"), write("empty", "\n")
	tests := []struct {
		name   string
		change func(o *Options)
		want   []string // substrings of the error; none means valid
	}{
		{name: "secret_from_environment_is_valid", change: func(*Options) {}},
		{name: "secret_from_file_is_valid", change: func(o *Options) { o.WebhookSecret, o.WebhookSecretFile = "", withNewline }},
		{name: "no_secret_refuses_to_start", change: func(o *Options) { o.WebhookSecret = "" },
			want: []string{"no webhook secret", "GITHUB_WEBHOOK_SECRET", "never accepts unsigned"}},
		{name: "two_secrets_are_ambiguous", change: func(o *Options) { o.WebhookSecretFile = withNewline },
			want: []string{"give one"}},
		{name: "missing_secret_file", change: func(o *Options) { o.WebhookSecret, o.WebhookSecretFile = "", filepath.Join(dir, "nope") },
			want: []string{"reading the webhook secret"}},
		{name: "empty_secret_file", change: func(o *Options) { o.WebhookSecret, o.WebhookSecretFile = "", empty },
			want: []string{"is empty"}},
		{name: "every_problem_at_once", change: func(o *Options) {
			o.WebhookSecret, o.Listen, o.NATS.Store, o.PublishTimeout, o.ShutdownTimeout = "", "8080", "", 10*time.Second, 0
		}, want: []string{"no webhook secret", "-listen", "-nats-store", "-publish-timeout", "-shutdown-timeout"}},
		{name: "budget_under_the_minimum", change: func(o *Options) { o.MaxInflightBytes = 1 << 20 },
			want: []string{"-max-inflight-bytes", "under the minimum"}},
		{name: "nats_url_needs_no_store", change: func(o *Options) { o.NATS.URL, o.NATS.Store, o.NATS.Port = "nats://q:4222", "", 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := testOptions(t)
			tt.change(&o)
			err := o.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", o)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestSecretFileDropsOneTrailingNewline(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("s3cret \r\n"), 0o600); err != nil {
		t.Fatalf("writing secret: %v", err)
	}
	got, err := Options{WebhookSecretFile: p}.secret()
	if err != nil || got != "s3cret " {
		t.Errorf("secret = %q, %v; want %q", got, err, "s3cret ")
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want []string
	}{
		{name: "help_lists_flags_and_environment", args: []string{"-h"}, code: 0,
			want: []string{"GITHUB_WEBHOOK_SECRET ", "$GITHUB_WEBHOOK_SECRET_FILE", "$YCI_LISTEN", `(default ":8080")`, "$NATS_URL",
				"$YCI_NATS_STORE", `(default ".yci/nats")`, "$YCI_PUBLISH_TIMEOUT", "$YCI_SHUTDOWN_TIMEOUT", "POST /webhook"}},
		{name: "no_secret_refuses_to_start", code: 2, want: []string{"invalid configuration", "no webhook secret"}},
		{name: "unknown_flag_is_usage_error", args: []string{"-nope"}, code: 2, want: []string{"-nope"}},
		{name: "stray_argument_is_usage_error", args: []string{"serve"}, env: map[string]string{"GITHUB_WEBHOOK_SECRET": "s"},
			code: 2, want: []string{"unexpected arguments: serve"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			if code := run(context.Background(), tt.args, env(tt.env), &stderr); code != tt.code {
				t.Errorf("exit status %d, want %d; output:\n%s", code, tt.code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

// run with a valid configuration serves until its context ends and exits 0.
func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	vars := map[string]string{
		"GITHUB_WEBHOOK_SECRET": testSecret, "YCI_LISTEN": "127.0.0.1:0",
		"YCI_NATS_STORE": filepath.Join(t.TempDir(), "nats"), "YCI_NATS_PORT": "-1",
	}
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, env(vars), &stderr) }()
	waitCtx, stop := context.WithTimeout(ctx, waitLimit)
	defer stop()
	if pause.Poll(waitCtx, 20*time.Millisecond, func() bool { return strings.Contains(stderr.String(), "receiver started") }) != nil {
		t.Fatalf("receiver did not start:\n%s", stderr.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit status %d after cancel; output:\n%s", code, stderr.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's writes and the test's
// reads at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
