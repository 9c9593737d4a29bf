package natsserver

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEndpoint(t *testing.T) {
	t.Run("validate", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			e    Endpoint
			want string
		}{
			{"url_needs_nothing_else", Endpoint{URL: "nats://q:4222"}, ""},
			{"embedded_default", Endpoint{Store: ".yci/nats", Port: DefaultLocalPort}, ""},
			{"embedded_needs_a_store_and_a_port", Endpoint{Port: 70000}, "-nats-store is required"},
		} {
			err := tc.e.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
			}
			if tc.name == "embedded_needs_a_store_and_a_port" && !strings.Contains(err.Error(), "-nats-port 70000") {
				t.Errorf("%s: both problems not reported: %v", tc.name, err)
			}
		}
	})
	t.Run("credentials_file", func(t *testing.T) {
		t.Setenv("XDG_CONFIG_HOME", "/cfg")
		for _, tc := range []struct {
			name string
			e    Endpoint
			want string
		}{
			{"given", Endpoint{Credentials: "/etc/yourci/nats.credentials", Port: DefaultLocalPort}, "/etc/yourci/nats.credentials"},
			{"per_port_in_the_users_config", Endpoint{Port: 4333}, "/cfg/yourci/nats-4333.credentials"},
			{"random_port_in_the_store", Endpoint{Port: RandomPort}, "/store/credentials"},
		} {
			got, err := tc.e.CredentialsFile("/store")
			if err != nil || got != tc.want {
				t.Errorf("%s: CredentialsFile = %q, %v; want %q", tc.name, got, err, tc.want)
			}
		}
	})
	t.Run("a_url_is_used_as_given", func(t *testing.T) {
		url, srv, err := Endpoint{URL: "nats://elsewhere:4222"}.Open(context.Background(), t.TempDir(), slog.New(slog.DiscardHandler))
		if err != nil || srv != nil || url != "nats://elsewhere:4222" {
			t.Fatalf("Open = %q, %v, %v", url, srv, err)
		}
	})
	t.Run("no_url_starts_the_embedded_server_under_base", func(t *testing.T) {
		base := t.TempDir()
		url, srv, err := Endpoint{Store: "nats", Port: RandomPort}.Open(context.Background(), base, slog.New(slog.DiscardHandler))
		if err != nil || srv == nil {
			t.Fatalf("Open = %q, %v, %v", url, srv, err)
		}
		defer srv.Shutdown()
		if !strings.HasPrefix(url, "nats://yourci:") || !strings.Contains(url, "@127.0.0.1:") {
			t.Errorf("url %q is not on loopback with credentials", url)
		}
		if _, err := os.Stat(filepath.Join(base, "nats", "credentials")); err != nil {
			t.Errorf("credentials of a random-port server not in its store: %v", err)
		}
	})
}
