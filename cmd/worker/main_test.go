package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunExitStatus(t *testing.T) {
	t.Parallel()
	checkout := func(yci string) string {
		dir := t.TempDir()
		if yci != "" {
			if err := os.WriteFile(filepath.Join(dir, ".yci.py"), []byte(yci), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	limitsFile := filepath.Join(t.TempDir(), "limits")
	if err := os.WriteFile(limitsFile, []byte("acme/mono max_running=2\nacme/web weight=0\nacme/mono\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const passing = "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('echo fine', name='ok')\n"
	const failing = "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('true', name='ok')\n    yield Bash('exit 4', name='broken')\n"
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "help_exits_zero_and_lists_environment", args: []string{"-h"}, wantCode: 0, wantStderr: "$HTTP_ROOT"},
		{name: "version_printed_without_any_configuration", args: []string{"-version"}, wantCode: 0, wantStdout: " (go"},
		{name: "local_passing_matrix_exits_zero", args: []string{"-local", checkout(passing), "-workspace", t.TempDir()}, wantCode: 0, wantStdout: "1 passed, 0 failed"},
		{name: "local_failing_test_exits_one", args: []string{"-local", checkout(failing), "-workspace", t.TempDir(), "-j", "2"}, wantCode: 1, wantStdout: "1 passed, 1 failed"},
		{name: "local_without_yci_py_says_what_is_expected", args: []string{"-local", checkout(""), "-workspace", t.TempDir()}, wantCode: 1, wantStderr: ".yci.py"},
		{name: "service_without_credentials_refuses_to_start", args: nil, wantCode: 2, wantStderr: "GITHUB_"},
		{name: "bad_values_reported_together", args: []string{"-j", "0", "-build-policy", "some"}, env: map[string]string{"GITHUB_ACCESS_TOKEN": "t", "HTTP_ROOT": "https://ci.example.com/"}, wantCode: 2, wantStderr: "-build-policy must be"},
		{name: "service_without_http_root_says_what_it_looks_like", env: map[string]string{"GITHUB_ACCESS_TOKEN": "t"}, wantCode: 2, wantStderr: "HTTP_ROOT (-http-root) is not set: give the URL under which nginx serves this worker's workspace, such as https://"},
		{name: "http_root_without_scheme_refused", env: map[string]string{"GITHUB_ACCESS_TOKEN": "t", "HTTP_ROOT": "ci.example.com/logs"}, wantCode: 2, wantStderr: `HTTP_ROOT "ci.example.com/logs" is not an http:// or https:// URL`},
		{name: "local_needs_no_http_root", args: []string{"-local", checkout(passing), "-workspace", t.TempDir()}, wantCode: 0, wantStdout: "1 passed"},
		{name: "bad_environment_value_named", env: map[string]string{"YCI_JOBS": "lots"}, wantCode: 2, wantStderr: `YCI_JOBS="lots": parse error`},
		{name: "duration_without_unit_gives_an_example", env: map[string]string{"YCI_GRACE": "30"}, wantCode: 2, wantStderr: `YCI_GRACE="30": a duration needs a unit, such as 30s or 2m`},
		{name: "bad_repo_limits_file_lines_reported_together", args: []string{"-repo-limits", limitsFile}, env: map[string]string{"GITHUB_ACCESS_TOKEN": "t", "HTTP_ROOT": "https://ci.example.com/"}, wantCode: 2,
			wantStderr: "line 2: weight=0 is below 1\nline 3: acme/mono is named twice"},
		{name: "missing_repo_limits_file_refused", env: map[string]string{"YCI_REPO_LIMITS": "/nonexistent/limits", "GITHUB_ACCESS_TOKEN": "t", "HTTP_ROOT": "https://ci.example.com/"}, wantCode: 2, wantStderr: "/nonexistent/limits"},
		{name: "negative_cap_refused", args: []string{"-max-running-per-repo", "-1"}, env: map[string]string{"GITHUB_ACCESS_TOKEN": "t", "HTTP_ROOT": "https://ci.example.com/"}, wantCode: 2, wantStderr: "-max-running-per-repo must not be negative"},
		{name: "pull_slots_below_one_refused", args: []string{"-pull-slots", "0"}, env: map[string]string{"GITHUB_ACCESS_TOKEN": "t", "HTTP_ROOT": "https://ci.example.com/"}, wantCode: 2, wantStderr: "-pull-slots must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			code := run(context.Background(), tt.args, env(tt.env), &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantStdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr.String())
			}
		})
	}
}
