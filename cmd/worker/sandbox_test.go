package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/sandbox/sandboxtest"
)

func TestSandboxOptions(t *testing.T) {
	t.Parallel()
	brokenBwrap := filepath.Join(t.TempDir(), "bwrap")
	if err := os.WriteFile(brokenBwrap, []byte("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    SandboxOptions
		local   bool
		wantErr []string // all in the error; none means no error and no sandbox
	}{
		{name: "missing_bwrap_names_the_package_and_the_way_out", opts: SandboxOptions{Network: "shared", bwrap: "/nonexistent/bwrap"},
			wantErr: []string{"install the bubblewrap package", "-sandbox none"}},
		{name: "bwrap_without_user_namespaces_names_the_sysctl", opts: SandboxOptions{Network: "shared", bwrap: brokenBwrap},
			wantErr: []string{"Permission denied", "kernel.unprivileged_userns_clone=1", "-sandbox none"}},
		{name: "none_needs_no_bwrap", opts: SandboxOptions{Backend: "none", Network: "shared", bwrap: "/nonexistent/bwrap"}},
		{name: "local_defaults_to_none", opts: SandboxOptions{Network: "shared", bwrap: "/nonexistent/bwrap"}, local: true},
		{name: "local_may_ask_for_bwrap", opts: SandboxOptions{Backend: "bwrap", Network: "shared", bwrap: "/nonexistent/bwrap"}, local: true,
			wantErr: []string{"install the bubblewrap package"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			box, err := tt.opts.open(context.Background(), tt.local, nil)
			if len(tt.wantErr) == 0 {
				if err != nil || box != nil {
					t.Fatalf("open = %v, %v; want no sandbox and no error", box, err)
				}
				return
			}
			if err == nil {
				t.Fatal("open succeeded; want an error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestSandboxFlags(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"-sandbox", "docker", "-test-network", "off", "-sandbox-ro-bind", "tools", "-sandbox-tmp-size", "-1"},
		env(map[string]string{"GITHUB_ACCESS_TOKEN": "t"}), &stdout, &stderr)
	for _, want := range []string{`-sandbox must be bwrap or none, not "docker"`, `-test-network: test network must be shared or none, not "off"`,
		`-sandbox-ro-bind: "tools" is not an absolute path`, `-sandbox-tmp-size -1 is negative`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
}

func TestLocalSaysWhichSandboxItUsed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const yci = "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('test \"$HOME\" = /home/yci', name='home')\n"
	if err := os.WriteFile(filepath.Join(dir, ".yci.py"), []byte(yci), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, sandbox, want string
		code                int
	}{
		{"default_is_none", "", "sandbox: none", 1}, // HOME is the user's, so the test fails
		{"bwrap_on_request", "bwrap", "sandbox: bwrap", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.sandbox == "bwrap" && !sandboxtest.Available(t) {
				t.Skip("bubblewrap not usable")
			}
			var stdout, stderr strings.Builder
			code := run(context.Background(), []string{"-local", dir, "-workspace", t.TempDir()},
				env(map[string]string{"YCI_SANDBOX": tt.sandbox}), &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.want) {
				t.Errorf("exit %d, want %d, and stdout lacks %q?\nstdout:\n%s\nstderr:\n%s", code, tt.code, tt.want, stdout.String(), stderr.String())
			}
		})
	}
}
