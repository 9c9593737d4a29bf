package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/yourci/yourci/pkg/githubauth"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/reconcile"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	defaults := Options{
		NATS:       natsserver.Endpoint{Store: ".yci/nats", Port: natsserver.DefaultLocalPort, Replicas: 1},
		StaleAfter: 2 * time.Hour, MaxRebuilds: 2, LockTTL: 10 * time.Minute, RateReserve: 100,
		Workspace: ".", RunningWindow: 2 * time.Hour, CacheUnusedFor: 30 * 24 * time.Hour,
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
				"GITHUB_REPOSITORIES": "acme/widgets acme/gadgets", "NATS_URL": "nats://q:4222",
				"GITHUB_ACCESS_TOKEN": "ghp_x", "YCI_STALE_AFTER": "3h", "YCI_RECONCILE_WAIT": "1m",
			},
			want: func(o *Options) {
				o.Repositories, o.NATS.URL, o.StaleAfter, o.Wait = "acme/widgets acme/gadgets", "nats://q:4222", 3*time.Hour, time.Minute
				o.GitHub.Token = "ghp_x"
			}},
		{name: "flags_win_over_environment",
			args: []string{"-stale-after", "30m", "-wait", "5s", "-repositories", "acme/x"},
			env:  map[string]string{"YCI_STALE_AFTER": "3h", "GITHUB_REPOSITORIES": "acme/widgets"},
			want: func(o *Options) { o.StaleAfter, o.Wait, o.Repositories = 30*time.Minute, 5*time.Second, "acme/x" }},
		{name: "cleanup_mode_is_a_flag_only",
			args: []string{"-cleanup-older-than", "336h", "-workspace", "/srv/ws"},
			env:  map[string]string{"YCI_CLEANUP_OLDER_THAN": "1h"},
			want: func(o *Options) { o.CleanupOlderThan, o.Workspace = 336*time.Hour, "/srv/ws" }},
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
			if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(githubauth.Config{})); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHelpListsFlagsEnvironmentAndExitStatuses(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	if code := run(t.Context(), []string{"-h"}, env(nil), &bytes.Buffer{}, &stderr); code != exitOK {
		t.Errorf("-h exited %d, want 0", code)
	}
	for _, want := range []string{
		"-stale-after", "$YCI_STALE_AFTER", "(default 2h0m0s)", "-wait", "-cleanup-older-than",
		"$GITHUB_REPOSITORIES", "$NATS_URL", "GITHUB_APP_ID", "Exit status:", "3  another sweep held the lock",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "app.pem")
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	valid := func() Options {
		return Options{
			Repositories: "acme/widgets", NATS: natsserver.Endpoint{Store: ".yci/nats", Port: natsserver.DefaultLocalPort, Replicas: 1},
			StaleAfter: reconcile.DefaultStaleAfter, MaxRebuilds: 2, LockTTL: time.Minute, RateReserve: 100,
			Workspace: dir, RunningWindow: time.Hour, GitHub: githubauth.Config{Token: "ghp_x"},
		}
	}
	tests := []struct {
		name   string
		change func(o *Options)
		want   []string // substrings of the error, all reported at once; none when valid
	}{
		{name: "a_token_and_a_list_are_enough", change: func(*Options) {}},
		{name: "an_app_needs_no_list", change: func(o *Options) {
			o.Repositories, o.GitHub = "", githubauth.ConfigFromEnv(env(map[string]string{
				"GITHUB_APP_ID": "12", "GITHUB_APP_PRIVATE_KEY_FILE": keyFile}))
		}},
		{name: "a_token_needs_a_list", change: func(o *Options) { o.Repositories = "" },
			want: []string{"nothing to sweep"}},
		{name: "bad_repositories_and_no_credentials_are_reported_together", change: func(o *Options) {
			o.Repositories, o.GitHub = "acme acme/* ok/fine", githubauth.Config{}
			o.StaleAfter, o.Wait, o.MaxRebuilds = 0, -time.Second, -1
		}, want: []string{`"acme"`, `"acme/*"`, "no GitHub credentials", "-stale-after", "-wait", "-max-rebuilds"}},
		{name: "the_embedded_jetstream_needs_a_store", change: func(o *Options) { o.NATS.Store, o.NATS.Port = "", 70000 },
			want: []string{"-nats-store", "-nats-port"}},
		{name: "a_nats_url_needs_no_store", change: func(o *Options) { o.NATS.URL, o.NATS.Store = "nats://q:4222", "" }},
		{name: "cleanup_needs_no_github", change: func(o *Options) {
			o.CleanupOlderThan, o.GitHub, o.Repositories = 336*time.Hour, githubauth.Config{}, ""
		}},
		{name: "cleanup_needs_a_workspace_directory", change: func(o *Options) {
			o.CleanupOlderThan, o.Workspace, o.RunningWindow = -time.Hour, file, 0
		}, want: []string{"-cleanup-older-than", "is not a directory", "-running-window"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := valid()
			tt.change(&o)
			err := o.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", o)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
