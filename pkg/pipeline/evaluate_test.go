package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// evalPython is the interpreter "python3" runs, resolved once: a version
// manager's shim (pyenv) in front of it can cost a second per start on a
// loaded machine. TestEvaluateLeavesNoCredentialsToPython keeps the default.
var evalPython = sync.OnceValue(func() string {
	path, err := ResolvePython(context.Background(), "python3")
	if err != nil {
		return "python3" // the tests then fail, saying why
	}
	return path
})

// evalCheckout returns a temporary directory holding testdata/yci/<fixture> as
// its .yci.py; an empty fixture leaves the directory without one.
func evalCheckout(tb testing.TB, fixture string) string {
	tb.Helper()
	dir := tb.TempDir()
	if fixture == "" {
		return dir
	}
	src, err := os.ReadFile(filepath.Join("testdata", "yci", fixture))
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), src, 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// evalPull is a pull request as GitHub's API returns it, trimmed.
func evalPull(tb testing.TB) json.RawMessage {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "yci", "pull.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func evalSeedTest(x, y string) Test {
	return Test{Name: x + "-" + y, Command: "./test.sh",
		Env:     map[string]string{"ENV_VAR_1": x, "ENV_VAR_2": y},
		Retries: 3, RetryIncrement: 600 * time.Second}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fixture string
		want    []Test
	}{
		{"seed_matrix_gives_four_named_tests", "matrix.py", []Test{
			evalSeedTest("foo", "x"), evalSeedTest("foo", "y"), evalSeedTest("bar", "x"), evalSeedTest("bar", "y"),
		}},
		{"dict_form_keys_become_settings_and_env", "dict.py", []Test{
			{Name: "foo", Command: "./test.sh", Env: map[string]string{"ENV_VAR_1": "foo"},
				Retries: 3, RetryIncrement: 600 * time.Second},
			{Name: "lint", Command: "make lint", Env: map[string]string{}, Timeout: 90 * time.Second},
		}},
		{"pull_reads_as_dict_and_attributes_with_build_id", "pull.py", []Test{
			{Name: "build-7", Command: "./test.sh", Env: map[string]string{
				"BRANCH": "feature/fast", "BASE": "main", "AUTHOR": "octocat", "LABEL": "ok-to-test"}},
		}},
		{"names_timeouts_numbers_and_defaults", "options.py", []Test{
			{Name: "unit", Command: "go test ./...", Env: map[string]string{}, Timeout: 5 * time.Minute},
			{Name: "4-0.5", Command: "./e2e.sh", Env: map[string]string{"SHARDS": "4", "RATIO": "0.5"},
				RetryIncrement: 1500 * time.Millisecond},
			{Name: "test-3", Command: "./docs.sh", Env: map[string]string{}},
			{Name: "postgres_16", Command: "./lint.sh", Env: map[string]string{"DB": "postgres:16", "EMPTY": ""}},
		}},
		{"printing_to_stdout_does_not_corrupt_the_result", "printing.py", []Test{
			{Name: "a", Command: "./test.sh", Env: map[string]string{"A": "a"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := Evaluator{Python: evalPython()}
			got, err := e.Evaluate(context.Background(), evalCheckout(t, tt.fixture), 7, evalPull(t))
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEvaluateShowsWhatItPrinted: with Printed set (a local run), what
// .yci.py printed reaches it after a good evaluation, results untouched;
// without, nothing is written anywhere.
func TestEvaluateShowsWhatItPrinted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := "import sys\nfrom yci.run import Bash\n\ndef test_generator(build_id, pull):\n" +
		"    print('picking tests')\n    sys.stderr.write('from stderr\\n')\n    yield Bash('true', name='t')\n"
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		show bool
		want string
	}{
		{name: "shown_when_asked", show: true, want: ".yci.py printed:\npicking tests\nfrom stderr\n"},
		{name: "nowhere_by_default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			e := Evaluator{Python: evalPython()}
			if tc.show {
				e.Printed = &out
			}
			tests, err := e.Evaluate(context.Background(), dir, 1, evalPull(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(tests) != 1 || tests[0].Name != "t" {
				t.Errorf("tests %+v, want the one yielded", tests)
			}
			if out.String() != tc.want {
				t.Errorf("printed %q, want %q", out.String(), tc.want)
			}
		})
	}
}

func TestEvaluateConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fixture    string // "" for a checkout without .yci.py
		evaluator  Evaluator
		wantLine   int
		wantError  []string // in Error(), the status's description
		wantDetail []string // in Detail(), the log
	}{
		{name: "missing_file_names_it_and_shows_an_example", wantError: []string{".yci.py: not found", "test_generator(build_id, pull)"},
			wantDetail: []string{"def test_generator(build_id, pull):", "IncrementalRetry(Bash("}},
		{name: "seed_example_names_file_line_and_fix", fixture: "seed.py", wantLine: 14,
			wantError: []string{".yci.py:14: positional argument follows keyword argument",
				"put Bash(...) first: IncrementalRetry(Bash(...), retries=3, retry_increment=600)"},
			wantDetail: []string{"Bash('./test.sh', env={'ENV_VAR_1': x, 'ENV_VAR_2': y}))", "^"}},
		{name: "syntax_error_is_located", fixture: "syntax.py", wantLine: 3,
			wantError: []string{".yci.py:3: SyntaxError"}, wantDetail: []string{"def test_generator(build_id, pull)"}},
		{name: "no_test_generator_says_what_to_define", fixture: "no_generator.py",
			wantError:  []string{".yci.py: defines no function test_generator(build_id, pull)"},
			wantDetail: []string{"def test_generator(build_id, pull):"}},
		{name: "test_generator_not_a_function", fixture: "not_callable.py",
			wantError: []string{"test_generator is a list, not a function"}},
		{name: "exception_has_traceback_and_line", fixture: "exception.py", wantLine: 5,
			wantError: []string{".yci.py:5: TypeError: 'NoneType' object is not subscriptable"},
			wantDetail: []string{"Traceback (most recent call last):", `File ".yci.py", line 10, in test_generator`,
				`File ".yci.py", line 5, in milestone`}},
		{name: "failed_import_is_located", fixture: "import_error.py", wantLine: 2,
			wantError: []string{".yci.py:2: ImportError", "Docker"}, wantDetail: []string{"yci/run.py"}},
		{name: "wrong_yield_type_names_item_and_type", fixture: "wrong_type.py", wantLine: 6,
			wantError: []string{".yci.py:6: item 2 is a str, not a test", "Bash(...)"}},
		{name: "endless_generator_is_capped", fixture: "endless.py", evaluator: Evaluator{MaxTests: 50}, wantLine: 8,
			wantError: []string{"yielded more than 50 tests"}},
		{name: "negative_retries_refused_at_the_call", fixture: "negative_retries.py", wantLine: 6,
			wantError: []string{"ValueError: retries must be between 0 and 100, got -1"}},
		{name: "list_env_value_refused", fixture: "env_list.py", wantLine: 5,
			wantError: []string{"env value of PYTHONS must be a string or a number, got list"}},
		{name: "none_env_value_in_dict_refused", fixture: "dict_bad_env.py", wantLine: 2,
			wantError: []string{"item 1: env value of DEBUG must be a string or a number, got NoneType None"}},
		{name: "dict_without_cmd_refused", fixture: "dict_no_cmd.py", wantLine: 2,
			wantError: []string{"item 1 is a dict without a 'CMD' key"}},
		{name: "traversing_name_refused", fixture: "traversal.py", wantLine: 5,
			wantError: []string{`item 1: test name "../../x" has '/'`}},
		{name: "traversing_dict_name_refused", fixture: "dict_traversal.py", wantLine: 2,
			wantError: []string{`item 1: test name "../../x" has '/'`}},
		{name: "name_of_the_checkout_refused", fixture: "reserved.py", wantLine: 2,
			wantError: []string{`test name "source" is reserved`, "name="}},
		{name: "duplicate_names_refused", fixture: "duplicate.py", wantLine: 6,
			wantError:  []string{`items 1 and 3 are both named "3.11"`},
			wantDetail: []string{"Item 1 was yielded at line 6 and item 3 at line 6"}},
		{name: "names_equal_once_made_safe_refused", fixture: "duplicate_sanitized.py", wantLine: 6,
			wantError: []string{`items 1 and 2 are both named "postgres_16"`}},
		{name: "sys_exit_is_reported", fixture: "sys_exit.py", wantLine: 5,
			wantError: []string{"called sys.exit(3)"}},
		{name: "os_exit_without_result_is_reported", fixture: "os_exit.py",
			wantError:  []string{"python stopped (exit status 0) before reporting its tests"},
			wantDetail: []string{"leaving now"}},
		{name: "retry_of_a_string_refused", fixture: "retry_wraps_string.py", wantLine: 5,
			wantError: []string{"IncrementalRetry wraps a Bash(...) test, got str"}},
		{name: "wrong_arity_is_located_at_the_definition", fixture: "wrong_arity.py", wantLine: 1,
			wantError: []string{"takes 1 positional argument but 2 were given"}},
		{name: "traceback_survives_heavy_printing", fixture: "printing_fails.py", wantLine: 5,
			wantError:  []string{"RuntimeError: database unreachable"},
			wantDetail: []string{"Traceback (most recent call last):", "noise line 0\n", "noise line 99999\n", "bytes left out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := tt.evaluator
			e.Python = evalPython()
			got, err := e.Evaluate(context.Background(), evalCheckout(t, tt.fixture), 7, evalPull(t))
			var cerr *ConfigError
			if !errors.As(err, &cerr) {
				t.Fatalf("Evaluate = %v, %v; want a *ConfigError", got, err)
			}
			if cerr.File != ConfigFile || cerr.Line != tt.wantLine {
				t.Errorf("located at %s:%d, want %s:%d\n%s", cerr.File, cerr.Line, ConfigFile, tt.wantLine, cerr.Detail())
			}
			msg := cerr.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("Error() spans lines: %q", msg)
			}
			for _, want := range tt.wantError {
				if !strings.Contains(msg, want) {
					t.Errorf("Error() = %q, want it to contain %q", msg, want)
				}
			}
			detail := cerr.Detail()
			if !strings.HasPrefix(detail, msg) {
				t.Errorf("Detail() does not start with Error():\n%s", detail)
			}
			for _, want := range tt.wantDetail {
				if !strings.Contains(detail, want) {
					t.Errorf("Detail() lacks %q:\n%s", want, detail)
				}
			}
			if len(detail) > 200<<10 {
				t.Errorf("Detail() is %d bytes, want it bounded", len(detail))
			}
		})
	}
}

// TestEvaluateStopsAHangAndLocatesIt gives python ample time to reach the
// hang, even on a loaded machine, since only a reached hang can be located.
func TestEvaluateStopsAHangAndLocatesIt(t *testing.T) {
	t.Parallel()
	e := Evaluator{Python: evalPython(), Timeout: 4 * time.Second}
	_, err := e.Evaluate(context.Background(), evalCheckout(t, "hang.py"), 1, nil)
	var cerr *ConfigError
	if !errors.As(err, &cerr) {
		t.Fatalf("Evaluate error = %v, want a *ConfigError", err)
	}
	if want := ".yci.py:6: evaluation stopped after 4s"; !strings.HasPrefix(cerr.Error(), want) {
		t.Errorf("Error() = %q, want it to start with %q", cerr.Error(), want)
	}
	for _, want := range []string{`File ".yci.py", line 6 in test_generator`, "waiting for the database"} {
		if !strings.Contains(cerr.Detail(), want) {
			t.Errorf("Detail() lacks %q:\n%s", want, cerr.Detail())
		}
	}
}

func TestEvaluateWorkerErrorsAreNotConfigErrors(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		evaluator Evaluator
		ctx       context.Context
		pull      json.RawMessage
		wantIs    error
	}{
		{name: "missing_interpreter", evaluator: Evaluator{Python: "/nonexistent/python3"},
			ctx: context.Background(), pull: json.RawMessage(`{}`), wantIs: os.ErrNotExist},
		{name: "cancelled_context", evaluator: Evaluator{Python: evalPython()}, ctx: cancelled, pull: json.RawMessage(`{}`), wantIs: context.Canceled},
		{name: "invalid_pull_json", evaluator: Evaluator{Python: evalPython()}, ctx: context.Background(), pull: json.RawMessage(`{"head":`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.evaluator.Evaluate(tt.ctx, evalCheckout(t, "matrix.py"), 1, tt.pull)
			var cerr *ConfigError
			if err == nil || errors.As(err, &cerr) {
				t.Fatalf("Evaluate error = %v, want a worker error", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Evaluate error = %v, want one wrapping %v", err, tt.wantIs)
			}
		})
	}
}

func TestEvaluateCancelStopsAHang(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	dir := evalCheckout(t, "hang.py")
	done := make(chan error, 1)
	go func() {
		_, err := (&Evaluator{Python: evalPython(), Timeout: time.Hour}).Evaluate(ctx, dir, 1, nil)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Evaluate after cancel = %v, want context.Canceled", err)
	}
}

func TestEvaluateKillsProcessesLeftBehind(t *testing.T) {
	t.Parallel()
	dir := evalCheckout(t, "background.py")
	if _, err := (&Evaluator{Python: evalPython()}).Evaluate(context.Background(), dir, 1, nil); err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "sleeper.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatal(err)
	}
	// Killed when Evaluate returns; gone a moment later (a SIGKILL takes
	// effect when the process is next scheduled).
	waitGone(t, pid)
}

func TestEvaluateLeavesNoCredentialsToPython(t *testing.T) {
	t.Setenv("GITHUB_ACCESS_TOKEN", "ghp_secret")
	dir := t.TempDir()
	src := "import os\n\ndef test_generator(build_id, pull):\n" +
		"    yield {'CMD': 'true', 'SEEN': os.environ.get('GITHUB_ACCESS_TOKEN', 'nothing')}\n"
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := new(Evaluator).Evaluate(context.Background(), dir, 1, nil)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	if seen := got[0].Env["SEEN"]; seen != "nothing" {
		t.Errorf(".yci.py saw GITHUB_ACCESS_TOKEN=%q", seen)
	}
}

func TestCaptureKeepsHeadAndTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"short_output_kept_whole", []string{"ab", "c"}, "abc"},
		{"exactly_full_kept_whole", []string{"abcdefgh"}, "abcdefgh"},
		{"middle_left_out", []string{"abcdefghij"}, "abcd\n[... 2 bytes left out ...]\nghij"},
		{"many_small_writes", []string{"ab", "cd", "ef", "gh", "ij", "kl", "mn", "op", "qr"},
			"abcd\n[... 10 bytes left out ...]\nopqr"},
		{"invalid_utf8_replaced", []string{"a\xffb"}, "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &capture{half: 4}
			for _, w := range tt.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := c.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func BenchmarkEvaluate(b *testing.B) {
	dir := evalCheckout(b, "matrix.py")
	pull := evalPull(b)
	e := Evaluator{Python: evalPython()}
	for b.Loop() {
		tests, err := e.Evaluate(context.Background(), dir, 1, pull)
		if err != nil || len(tests) != 4 {
			b.Fatalf("Evaluate = %d tests, %v", len(tests), err)
		}
	}
}
