package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// Evaluator turns a checkout's .yci.py into the tests of a build by running
// it with python3 and the embedded yci package. The zero value is ready to
// use; an Evaluator is safe for concurrent use and keeps no state between
// calls.
type Evaluator struct {
	// Python is the interpreter to run; "" means "python3" from PATH.
	Python string
	// Timeout bounds one evaluation; zero or less means 30 seconds.
	Timeout time.Duration
	// MaxTests is the most tests one .yci.py may yield; zero or less means 1000.
	MaxTests int
	// Env is python's whole environment. Nil means a minimal one (PATH,
	// HOME, LANG=C.UTF-8): the worker's credentials never reach .yci.py.
	Env []string
	// Sandbox, when set, confines python: it may read the checkout and the
	// evaluation's own directory (the yci package, the pull request) and
	// write nothing of the host but the pipes the worker gave it. Python
	// must then be visible inside it (a system interpreter, not a shim in
	// HOME).
	Sandbox Sandbox
	// Printed, when set, receives what .yci.py printed (stdout and
	// stderr, bounded) when it evaluated well, headed by a line naming
	// the file; a ConfigError carries it otherwise. A local run sets it,
	// so the prints a user debugs .yci.py with are seen; the service
	// leaves it nil, printing being harmless there.
	Printed io.Writer
}

const (
	defaultPython   = "python3"
	defaultTimeout  = 30 * time.Second
	defaultMaxTests = 1000
	// maxResult bounds the evaluator's answer, read into memory.
	maxResult = 16 << 20
	// maxSeconds mirrors yci/_check.py's MAX_SECONDS, the longest timeout
	// or retry increment.
	maxSeconds = 24 * 60 * 60
)

func (e *Evaluator) python() string {
	if e.Python == "" {
		return defaultPython
	}
	return e.Python
}

func (e *Evaluator) timeout() time.Duration {
	if e.Timeout <= 0 {
		return defaultTimeout
	}
	return e.Timeout
}

func (e *Evaluator) maxTests() int {
	if e.MaxTests <= 0 {
		return defaultMaxTests
	}
	return e.MaxTests
}

func (e *Evaluator) environ() []string {
	if e.Env != nil {
		return e.Env
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{"PATH=" + path, "LANG=C.UTF-8"}
	if home := os.Getenv("HOME"); home != "" {
		env = append(env, "HOME="+home)
	}
	return env
}

// Evaluate imports test_generator from sourceDir/.yci.py, calls it with
// buildID and pull and returns the tests it yields, in order, with valid
// and unique names. pull reaches .yci.py byte for byte: the caller passes
// the body of GitHub's API response unchanged (the worker does), so fields
// GitHub sends as null are there as None; nil means an empty object.
//
// A *ConfigError means the repository's file is at fault (missing, broken,
// too slow, yielding nonsense): report it on the pull request. Any other
// error is the worker's (python3 missing, ctx ended, disk full) and worth
// trying again. Whatever .yci.py does, Evaluate returns soon after Timeout
// (a second or two to collect its stacks and output) and leaves none of its
// processes running, except any that left its process group (setsid).
//
// A .yci.py evaluated this way cannot learn what changed: its
// changed_files() raises. See EvaluateChange.
func (e *Evaluator) Evaluate(ctx context.Context, sourceDir string, buildID int, pull json.RawMessage) ([]Test, error) {
	return e.EvaluateChange(ctx, sourceDir, buildID, pull, nil)
}

// Change is what a build's .yci.py learns of the change it tests through
// yci.changes.changed_files().
type Change struct {
	// Files are the paths the change touches, in the order changed_files()
	// returns them (git's, bytewise sorted). They may hold any bytes but
	// NUL: they reach python as a NUL-separated file, never as arguments
	// or environment, so tens of thousands of them are fine.
	Files []string
}

// EvaluateChange is Evaluate for a build that knows its change: .yci.py's
// changed_files() returns change.Files (nil: changed_files() raises,
// saying YourCI did not compute them).
func (e *Evaluator) EvaluateChange(ctx context.Context, sourceDir string, buildID int, pull json.RawMessage, change *Change) ([]Test, error) {
	dir, err := filepath.Abs(sourceDir)
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", ConfigFile, err)
	}
	if err := checkConfigFile(dir); err != nil {
		return nil, err
	}
	if pull = bytes.TrimSpace(pull); len(pull) == 0 {
		pull = json.RawMessage("{}")
	} else if !json.Valid(pull) {
		return nil, fmt.Errorf("evaluating %s: the pull request is not valid JSON", ConfigFile)
	}
	work, err := os.MkdirTemp("", "yci-evaluate-")
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", ConfigFile, err)
	}
	defer removeWorkDir(work)
	if err := writePackage(work); err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", ConfigFile, err)
	}
	if err := os.WriteFile(filepath.Join(work, "pull.json"), pull, 0o600); err != nil {
		return nil, fmt.Errorf("evaluating %s: writing the pull request: %w", ConfigFile, err)
	}
	changesPath, err := writeChange(work, change)
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", ConfigFile, err)
	}
	exit, err := e.runPython(ctx, dir, work, e.args(work, dir, buildID, changesPath))
	switch {
	case err != nil:
		return nil, err
	case ctx.Err() != nil:
		return nil, fmt.Errorf("evaluating %s: %w", ConfigFile, context.Cause(ctx))
	case exit.timedOut:
		return nil, e.timeoutError(work, exit.stacks).withOutput(exit.printed)
	case len(exit.result) == 0:
		return nil, (&ConfigError{File: ConfigFile, Message: fmt.Sprintf(
			"python stopped (%s) before reporting its tests", exitStatus(exit.err))}).withOutput(exit.printed)
	}
	out, cerr := decodeResult(exit.result, exit.resultOver)
	if cerr != nil {
		return nil, cerr.withOutput(exit.printed)
	}
	if out.Error != nil {
		return nil, out.Error.configError().withOutput(exit.printed)
	}
	tests, cerr := convertTests(out.Tests)
	if cerr != nil {
		return nil, cerr.withOutput(exit.printed)
	}
	if e.Printed != nil && exit.printed != "" {
		printed := strings.TrimSuffix(exit.printed, "\n")
		if _, err := fmt.Fprintf(e.Printed, "%s printed:\n%s\n", ConfigFile, printed); err != nil {
			return nil, fmt.Errorf("showing what %s printed: %w", ConfigFile, err)
		}
	}
	return tests, nil
}

// args are python's arguments: isolated from the environment and the
// user's site-packages (-I), writing no bytecode into the checkout (-B),
// unbuffered so prints before a hang are seen (-u), always UTF-8.
// changesPath is the NUL-separated list of changed files, or "" when
// the change is not known.
func (e *Evaluator) args(work, dir string, buildID int, changesPath string) []string {
	return []string{"-I", "-B", "-u", "-X", "utf8",
		filepath.Join(work, "yci", "_evaluate.py"),
		dir, strconv.Itoa(buildID),
		filepath.Join(work, "pull.json"), strconv.Itoa(resultFD),
		strconv.Itoa(e.maxTests()), strconv.Itoa(stacksFD), changesPath}
}

// writeChange writes change's files, each followed by a NUL, to
// work/changes and returns its path; "" for a nil change. A name holding
// a NUL (git never gives one) is refused.
func writeChange(work string, change *Change) (string, error) {
	if change == nil {
		return "", nil
	}
	var buf bytes.Buffer
	for _, f := range change.Files {
		if f == "" || strings.IndexByte(f, 0) >= 0 {
			return "", fmt.Errorf("changed file %q is empty or holds a NUL", f)
		}
		buf.WriteString(f)
		buf.WriteByte(0)
	}
	path := filepath.Join(work, "changes")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return "", fmt.Errorf("writing the changed files: %w", err)
	}
	return path, nil
}

// checkConfigFile returns a *ConfigError when dir has no .yci.py to run.
func checkConfigFile(dir string) error {
	info, err := os.Stat(filepath.Join(dir, ConfigFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &ConfigError{File: ConfigFile, Output: configExample, Message: "not found at the root of the " +
			"repository; add one defining test_generator(build_id, pull)"}
	case err != nil:
		return fmt.Errorf("evaluating %s: %w", ConfigFile, err)
	case info.IsDir():
		return &ConfigError{File: ConfigFile, Output: configExample, Message: "is a directory, not a Python file"}
	}
	return nil
}

// exitStatus describes how python ended, given exec.Cmd.Wait's error.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func removeWorkDir(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		slog.Warn("removing the evaluation directory", "dir", dir, "err", err)
	}
}

// hangLine finds the innermost line of .yci.py in the stacks that
// faulthandler dumps when the time limit is reached.
var hangLine = regexp.MustCompile(`File "\.yci\.py", line (\d+)`)

// timeoutError locates a hang from the stacks python dumped, if it got that
// far; work is the evaluation's directory, left out of the paths shown.
func (e *Evaluator) timeoutError(work string, stacks []byte) *ConfigError {
	cerr := &ConfigError{File: ConfigFile, Message: fmt.Sprintf(
		"evaluation stopped after %s: does test_generator loop or wait forever?", e.timeout())}
	if len(stacks) == 0 {
		return cerr
	}
	if m := hangLine.FindSubmatch(stacks); m != nil {
		if line, err := strconv.Atoi(string(m[1])); err == nil {
			cerr.Line = line
		}
	}
	var where []string
	for _, line := range strings.Split(string(stacks), "\n") {
		if !strings.Contains(line, "yci/_evaluate.py") { // the evaluator's own frames
			where = append(where, strings.ReplaceAll(line, work+"/", ""))
		}
	}
	cerr.Output = "Where Python was when it was stopped:\n" + strings.Join(where, "\n")
	return cerr
}

// evalOutput is what yci/_evaluate.py writes to its result file.
type evalOutput struct {
	Tests []evalTest   `json:"tests"`
	Error *evalFailure `json:"error"`
}

type evalFailure struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Message string `json:"message"`
	Detail  string `json:"detail"`
	Example bool   `json:"example"` // a minimal .yci.py would help
}

func (f *evalFailure) configError() *ConfigError {
	cerr := &ConfigError{File: f.File, Line: f.Line, Message: f.Message, Output: f.Detail}
	if f.Example && cerr.Output != "" {
		cerr.Output += "\n"
	}
	if f.Example {
		cerr.Output += configExample
	}
	return cerr
}

// evalTest is one yielded test, its values checked by yci/_check.py.
type evalTest struct {
	Item           int         `json:"item"` // 1-based position in the yielded sequence
	Line           int         `json:"line"` // where it was yielded
	Name           *string     `json:"name"` // nil: derived from the env values
	Command        string      `json:"command"`
	Env            [][2]string `json:"env"` // in the order .yci.py gave them
	Retries        int         `json:"retries"`
	RetryIncrement float64     `json:"retry_increment"` // seconds
	Timeout        float64     `json:"timeout"`         // seconds; 0 means none
}

// decodeResult reads what python wrote on resultFD. Python runs the
// repository's code, which can write there too: anything but a well-formed
// report is the file's fault.
func decodeResult(data []byte, over bool) (*evalOutput, *ConfigError) {
	if over {
		return nil, &ConfigError{File: ConfigFile, Message: fmt.Sprintf(
			"the tests it yields take more than %d MiB to describe", maxResult>>20)}
	}
	var out evalOutput
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return nil, &ConfigError{File: ConfigFile, Message: fmt.Sprintf(
			"the evaluation's report is unreadable (did it write to descriptor %d?): %v", resultFD, err)}
	}
	if dec.More() {
		return nil, &ConfigError{File: ConfigFile, Message: fmt.Sprintf(
			"the evaluation's report has more than one document (did it write to descriptor %d?)", resultFD)}
	}
	return &out, nil
}

// convertTests names the yielded tests and refuses duplicate names.
func convertTests(records []evalTest) ([]Test, *ConfigError) {
	tests := make([]Test, 0, len(records))
	byName := make(map[string]evalTest, len(records))
	for _, rec := range records {
		t, cerr := rec.test()
		if cerr != nil {
			return nil, cerr
		}
		if prev, ok := byName[t.Name]; ok {
			return nil, &ConfigError{File: ConfigFile, Line: rec.Line,
				Message: fmt.Sprintf("items %d and %d are both named %q; give them distinct name=",
					prev.Item, rec.Item, t.Name),
				Output: fmt.Sprintf("Item %d was yielded at line %d and item %d at line %d. A test's name is "+
					"its env values joined by '-' unless Bash(..., name=...) or 'NAME' gives one; "+
					"names must be unique within a build.\n", prev.Item, prev.Line, rec.Item, rec.Line)}
		}
		byName[t.Name] = rec
		tests = append(tests, t)
	}
	return tests, nil
}

func (r evalTest) test() (Test, *ConfigError) {
	fail := func(format string, args ...any) (Test, *ConfigError) {
		msg := fmt.Sprintf("item %d: ", r.Item) + fmt.Sprintf(format, args...)
		return Test{}, &ConfigError{File: ConfigFile, Line: r.Line, Message: msg}
	}
	t := Test{Command: r.Command, Retries: r.Retries, Env: make(map[string]string, len(r.Env))}
	values := make([]string, 0, len(r.Env))
	for _, kv := range r.Env {
		t.Env[kv[0]] = kv[1]
		values = append(values, kv[1])
	}
	if r.Name != nil {
		if err := events.ValidateTestName(*r.Name); err != nil {
			return fail("%v", err)
		}
		t.Name = *r.Name
	} else {
		name, err := derivedName(values, r.Item)
		if err != nil {
			return fail("%v", err)
		}
		t.Name = name
	}
	var ok1, ok2 bool
	t.Timeout, ok1 = seconds(r.Timeout)
	t.RetryIncrement, ok2 = seconds(r.RetryIncrement)
	if !ok1 || !ok2 || r.Command == "" || r.Retries < 0 {
		return fail("the evaluator reported an impossible test (command %q, retries %d, "+
			"retry increment %gs, timeout %gs)", r.Command, r.Retries, r.RetryIncrement, r.Timeout)
	}
	return t, nil
}

// seconds converts a checked number of seconds to a Duration.
func seconds(s float64) (time.Duration, bool) {
	if math.IsNaN(s) || s < 0 || s > maxSeconds {
		return 0, false
	}
	return time.Duration(s * float64(time.Second)), true
}
