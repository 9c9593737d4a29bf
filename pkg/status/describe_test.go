package status

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// describeCase is one call of a description helper and its name in the
// golden file.
type describeCase struct {
	name string
	got  string
}

// huge is an argument far past what a description can hold.
var huge = strings.Repeat("ünïcødé\n\tline ", 100)

func describeCases() map[string][]describeCase {
	return map[string][]describeCase{
		"queued": {{"always", Queued()}},
		"running": {
			{"single attempt shows no count", Running(1, 1)},
			{"first of four", Running(1, 4)},
			{"last of four", Running(4, 4)},
		},
		"retrying": {
			{"ten minutes before the second attempt", RetryingIn(10*time.Minute, 2, 4)},
			{"ninety seconds", RetryingIn(90*time.Second, 3, 4)},
			{"an hour and a half", RetryingIn(90*time.Minute, 4, 4)},
			{"nothing to wait", RetryingIn(0, 2, 2)},
		},
		"passed": {
			{"first attempt", Passed(2*time.Minute+13*time.Second, 1)},
			{"after retries", Passed(45*time.Second, 3)},
			{"under a second", Passed(350*time.Millisecond, 1)},
			{"over an hour", Passed(time.Hour+4*time.Minute+40*time.Second, 1)},
		},
		"failed": {
			{"last of its attempts", Failed(1, 4, 4, 12*time.Second)},
			{"exit code without retries", Failed(2, 1, 1, 3*time.Minute)},
			{"killed by a signal", Failed(-1, 2, 3, time.Minute)},
		},
		"timedout": {
			{"with retries", TimedOut(30*time.Minute, 1, 3)},
			{"without retries", TimedOut(2*time.Hour, 1, 1)},
		},
		"errored": {
			{"short reason", Errored("disk full while writing out.txt")},
			{"multi-line reason becomes one line", Errored("git fetch failed:\n  fatal: could not read from remote\n")},
			{"huge reason is cut", Errored(huge)},
			{"a long chain keeps its cause", Errored("checking out the merge: git checkout 2222222222222222222222222222222222222222 in /var/lib/yourci/checkouts/acme/widget/3/unit: fatal: reference is not a tree")},
		},
		"configerror": {
			{"positional after keyword", ConfigError("line 7: positional argument follows keyword argument; put Bash(...) first")},
			{"huge reason is cut", ConfigError(huge)},
		},
		"superseded": {
			{"full sha is abbreviated", Superseded("89abcdef0123456789abcdef0123456789abcdef")},
			{"short sha is kept", Superseded("89abc")},
			{"dropped before it ran", SupersededBeforeRun("89abcdef0123456789abcdef0123456789abcdef")},
		},
		"preparing": {
			{"fetch refused", PreparingFailed(1, 9, "updating mirror: git fetch: fatal: unable to access 'https://github.example/acme/widget.git/': Connection refused")},
			{"huge reason is cut but still says it retries", PreparingFailed(3, 9, huge)},
			{"a long chain keeps its cause", PreparingFailed(2, 9, "claiming a build number: claiming build of acme/widget#3 at 1111111111111111111111111111111111111111: reading pulls.acme.widget.3: nats: timeout")},
			{"gave up", GaveUpPreparing(9)},
		},
		"mergeconflict": {
			{"one file", MergeConflict("main", "89abcdef0123456789abcdef0123456789abcdef", 1)},
			{"many files", MergeConflict("release/2.x", "89abcdef0123456789abcdef0123456789abcdef", 12)},
			{"huge branch name is cut", MergeConflict(huge, "89abcdef0123456789abcdef0123456789abcdef", 3)},
		},
		"approval": {
			{"default label", ApprovalNeeded("ok-to-test")},
			{"huge label is cut", ApprovalNeeded(huge)},
			{"approved", Approved("maintainer-jane")},
			{"approved by a huge login", Approved(huge)},
		},
	}
}

func TestDescriptionsMatchGoldenFiles(t *testing.T) {
	t.Parallel()
	for helper, cases := range describeCases() {
		t.Run(helper, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			for _, c := range cases {
				fmt.Fprintf(&b, "%s: %s\n", c.name, c.got)
			}
			path := filepath.Join("testdata", helper+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatalf("updating golden file: %v", err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), b.String()); diff != "" {
				t.Errorf("%s differs (-golden +got):\n%s", path, diff)
			}
		})
	}
}

func TestDescriptionsFitGitHub(t *testing.T) {
	t.Parallel()
	for helper, cases := range describeCases() {
		for _, c := range cases {
			t.Run(helper+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				if n := utf8.RuneCountInString(c.got); n > MaxDescription {
					t.Errorf("%d characters, over %d: %q", n, MaxDescription, c.got)
				}
				if !utf8.ValidString(c.got) || strings.ContainsAny(c.got, "\n\r\t") {
					t.Errorf("not one line of valid UTF-8: %q", c.got)
				}
			})
		}
	}
}

func TestCut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short text is kept", "abc", 5, "abc"},
		{"text of exactly the limit is kept", "abcde", 5, "abcde"},
		{"long text ends with an ellipsis", "abcdef", 5, "abcd…"},
		{"multi-byte characters are never split", "ééééééé", 4, "ééé…"},
		{"space before the ellipsis is dropped", "ab   cdef", 5, "ab…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := cut(tc.in, tc.n); got != tc.want {
				t.Errorf("cut(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestCleanDescription(t *testing.T) {
	t.Parallel()
	secret := "ghp_0123456789abcdefSECRET"
	tests := []struct {
		name    string
		in      string
		secrets []string
		want    string
	}{
		{"white space and control characters collapse", " a\n\tb\x00c  ", nil, "a b c"},
		{"invalid UTF-8 is repaired", "a\xffb", nil, "a\uFFFDb"},
		{"a secret is masked everywhere", secret + " and " + secret, []string{secret}, "*** and ***"},
		{"a secret containing another is masked whole", "tok=abcdef", []string{"abc", "abcdef"}, "tok=***"},
		{
			"a secret where the cut falls is masked, not half shown",
			strings.Repeat("x", 130) + secret,
			[]string{secret},
			strings.Repeat("x", 130) + "***",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := cleanDescription(tc.in, tc.secrets); got != tc.want {
				t.Errorf("cleanDescription(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestBackoffGrowsWithinBounds(t *testing.T) {
	t.Parallel()
	p := retryPolicy{firstDelay: time.Second, maxDelay: 8 * time.Second}
	for attempt, ceiling := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 10: 8 * time.Second, 1000: 8 * time.Second} {
		for range 50 {
			if d := p.backoff(attempt); d < ceiling/2 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, ceiling/2, ceiling)
			}
		}
	}
}

func TestDescriptionsCarryNoPaths(t *testing.T) {
	t.Parallel()
	const ws = "/var/lib/yourci/workspace"
	cases := []struct {
		name, reason string
		keep         string // what of the reason must survive
	}{
		{"open", "open " + ws + "/builds/acme/widget/3/unit/out.txt: permission denied", "open …/out.txt: permission denied"},
		{"link", "link " + ws + "/logs/a " + ws + "/logs/b: file exists", "link …/a …/b: file exists"},
		{"git_names_the_mirror", "updating the mirror: git fetch: fatal: '" + ws + "/mirrors/acme/widget.git' does not appear to be a git repository", "'…/widget.git'"},
		{"exec", `evaluating .yci.py: exec: "` + ws + `/bin/python3": executable file not found in $PATH`, `"…/python3"`},
		{"fork_exec", "starting the sandbox: fork/exec " + ws + "/tools/bwrap: no such file or directory", "fork/exec …/bwrap"},
		{"assignment", "git: GIT_DIR=" + ws + "/mirrors/x.git: not a git repository", "GIT_DIR=…/x.git"},
		{"bracketed", "checkout failed (" + ws + "/src): disk full", "(…/src)"},
		{"at_the_start", ws + "/src: no space left on device", "…/src: no space left on device"},
		{"a_url_is_kept", "git fetch: unable to access 'https://github.example/acme/widget.git/': refused", "https://github.example/acme/widget.git/"},
		{"a_command_is_kept", "re-run asked with /retest failed", "/retest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, d := range []string{Errored(tc.reason), PreparingFailed(1, 3, tc.reason), ConfigError(tc.reason), WithoutPaths(tc.reason)} {
				if strings.Contains(d, ws) || strings.Contains(d, "/var/") {
					t.Errorf("description %q shows the box's path", d)
				}
			}
			if got := WithoutPaths(tc.reason); !strings.Contains(got, tc.keep) {
				t.Errorf("WithoutPaths(%q) = %q, want it to keep %q", tc.reason, got, tc.keep)
			}
		})
	}
}

func TestErrorReasonWordsFileErrorsWithoutPaths(t *testing.T) {
	t.Parallel()
	const ws = "/var/lib/yourci/workspace"
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"path_error", &fs.PathError{Op: "open", Path: ws + "/builds/3/unit/out.txt", Err: syscall.ENOSPC}, "open: no space left on device"},
		{"wrapped_path_error", fmt.Errorf("writing the log: %w", &fs.PathError{Op: "write", Path: ws + "/log", Err: syscall.EIO}), "writing the log: write: input/output error"},
		{"link_error", &os.LinkError{Op: "link", Old: ws + "/a", New: ws + "/b", Err: syscall.EEXIST}, "link: file exists"},
		{"free_text", errors.New("git fetch: fatal: '" + ws + "/mirrors/x.git' is not a repository"), "git fetch: fatal: '…/x.git' is not a repository"},
		{"both", fmt.Errorf("at %s: %w", ws+"/src", &fs.PathError{Op: "mkdir", Path: ws + "/src/a", Err: syscall.EACCES}), "at …/src: mkdir: permission denied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ErrorReason(tc.err); got != tc.want {
				t.Errorf("ErrorReason() = %q, want %q", got, tc.want)
			}
		})
	}
}
