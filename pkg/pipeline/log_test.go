package pipeline

import (
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func init() {
	// Other test files of the package may define -update too; one flag
	// serves them all.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files in testdata")
	}
}

// assertRunGolden compares got with testdata/name.golden, or rewrites the
// file when the tests run with -update.
func assertRunGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// fakeClock starts at a fixed time and moves 1.25s on at every reading.
func fakeClock() func() time.Time {
	var mu sync.Mutex
	next := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := next
		next = next.Add(1250 * time.Millisecond)
		return now
	}
}

func TestRunnerLogGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		test   Test
		runner Runner
	}{
		{
			name: "passed",
			test: Test{Name: "foo-x", Command: "echo hello\necho world >&2", Env: map[string]string{"ENV_VAR_1": "foo", "ENV_VAR_2": "x y"}},
		},
		{
			name: "failed_without_newline_will_retry",
			test: Test{Name: "flaky", Command: "printf 'no newline'; exit 2", Retries: 3, RetryIncrement: 10 * time.Minute},
		},
		{
			name: "timed_out",
			// No output: whether any would come before the timeout depends
			// on the machine's load.
			test: Test{Name: "slow", Command: "sleep 1000", Timeout: 50 * time.Millisecond},
		},
		{
			name:   "truncated",
			test:   Test{Name: "chatty", Command: "seq 1 100"},
			runner: Runner{LogLimit: 300},
		},
		{
			name:   "masked",
			test:   Test{Name: "secret", Command: "echo pw=hunter22", Env: map[string]string{"PASSWORD": "hunter22"}},
			runner: Runner{Secrets: []string{"hunter22"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := attemptIn(t, tt.test.Command)
			a.Test = tt.test
			r := tt.runner
			r.now = fakeClock()
			_, log := runOK(t, &r, a)
			assertRunGolden(t, "run_"+tt.name, log)
		})
	}
}
