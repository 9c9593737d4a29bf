package deploy

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// unitFiles are the systemd units shipped in systemd/.
var unitFiles = []string{
	"yourci-receiver.service",
	"yourci-worker.service",
	"yourci-reconcile.service",
	"yourci-reconcile.timer",
	"yourci-cleanup.service",
	"yourci-cleanup.timer",
}

// TestSystemdUnitsVerify runs `systemd-analyze verify` on the units, with
// the YourCI binaries they start replaced by stand-ins (verify refuses a
// missing ExecStart binary). Any complaint, such as a misspelt directive or
// a value systemd cannot parse, which systemd would only log and ignore at
// run time, fails the test.
func TestSystemdUnitsVerify(t *testing.T) {
	t.Parallel()
	analyze := requireBinary(t, "systemd-analyze", "YCI_SYSTEMD_ANALYZE", "YCI_REQUIRE_SYSTEMD_ANALYZE")
	dir, bin := t.TempDir(), t.TempDir()
	for _, name := range []string{"yci-receiver", "yci-worker", "yci-reconcile"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	paths := make([]string, 0, len(unitFiles))
	for _, name := range unitFiles {
		text := strings.ReplaceAll(readDeployFile(t, "systemd/"+name), "/usr/local/bin/", bin+"/")
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, analyze, append([]string{"verify", "--man=no"}, paths...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=warning")
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDeployFilesAgreeOnTheWorkspace checks that nginx serves the directory
// the worker runs in and the cleanup cleans: three files an operator edits
// separately, which must name the same path.
func TestDeployFilesAgreeOnTheWorkspace(t *testing.T) {
	t.Parallel()
	root := regexp.MustCompile(`(?m)^\s*root\s+([^;]+);`).FindStringSubmatch(readDeployFile(t, nginxConf))
	if root == nil {
		t.Fatalf("%s has no root directive", nginxConf)
	}
	workspace := root[1]
	for _, unit := range []string{"yourci-worker.service", "yourci-cleanup.service"} {
		t.Run(unit+"_works_in_the_served_workspace", func(t *testing.T) {
			t.Parallel()
			directives := unitDirectives(t, "systemd/"+unit)
			if got := directives["WorkingDirectory"]; !slices.Equal(got, []string{workspace}) {
				t.Errorf("WorkingDirectory = %q, want %q (nginx's root)", got, workspace)
			}
			var writable []string
			for _, v := range directives["ReadWritePaths"] {
				writable = append(writable, strings.Fields(v)...)
			}
			if !slices.Contains(writable, workspace) {
				t.Errorf("ReadWritePaths %q lack the workspace %s", writable, workspace)
			}
		})
	}
}

// unitDirectives returns every Key=value of a unit file, keyed by Key, in
// file order.
func unitDirectives(t *testing.T, name string) map[string][]string {
	t.Helper()
	directives := make(map[string][]string)
	sc := bufio.NewScanner(strings.NewReader(readDeployFile(t, name)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		if key, value, ok := strings.Cut(line, "="); ok {
			directives[key] = append(directives[key], value)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return directives
}

// TestSystemdUnitsRefuseToStartWithoutNATSURL runs each unit's
// ExecStartPre guard with sh, after systemd's own unquoting ('...' around
// the script, $$ for a literal $).
func TestSystemdUnitsRefuseToStartWithoutNATSURL(t *testing.T) {
	t.Parallel()
	for _, unit := range []string{"yourci-receiver.service", "yourci-worker.service", "yourci-reconcile.service", "yourci-cleanup.service"} {
		pre := unitDirectives(t, "systemd/"+unit)["ExecStartPre"]
		if len(pre) != 1 || !strings.HasPrefix(pre[0], "/bin/sh -c '") || !strings.HasSuffix(pre[0], "'") {
			t.Fatalf("%s: ExecStartPre = %q, want one /bin/sh -c '...' guard", unit, pre)
		}
		script := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(pre[0], "/bin/sh -c '"), "'"), "$$", "$")
		for _, tc := range []struct {
			name, env string
			starts    bool
		}{
			{"starts_with_NATS_URL", "NATS_URL=nats://127.0.0.1:4222", true},
			{"refuses_without_NATS_URL", "NATS_URL=", false},
		} {
			t.Run(unit+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
				defer cancel()
				cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
				cmd.Env = []string{"PATH=/usr/bin:/bin", tc.env}
				out, err := cmd.CombinedOutput()
				if started := err == nil; started != tc.starts {
					t.Errorf("guard with %s: err = %v, output %q; want start = %v", tc.env, err, out, tc.starts)
				}
			})
		}
	}
}
