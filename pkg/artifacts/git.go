package artifacts

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// GitAuth carries the credentials git uses against the forge. A token goes
// in Password; an empty Username then means "x-access-token", which GitHub
// accepts for installation and personal tokens. The zero value means
// anonymous access.
//
// Credentials reach git only through the environment of the git process (as
// an http.extraHeader set by GIT_CONFIG_COUNT), never through its command
// line, a URL, a config file or a log line, and they are redacted from the
// errors this package returns. GitAuth prints as redacted with fmt and slog.
type GitAuth struct {
	Username, Password string
}

// String hides the credentials from fmt's %v and %s.
func (a GitAuth) String() string {
	if a.Password == "" && a.Username == "" {
		return "GitAuth{anonymous}"
	}
	return "GitAuth{redacted}"
}

// GoString hides the credentials from fmt's %#v.
func (a GitAuth) GoString() string { return a.String() }

// LogValue hides the credentials from log/slog.
func (a GitAuth) LogValue() slog.Value { return slog.StringValue(a.String()) }

func (a GitAuth) basic() string {
	if a.Password == "" && a.Username == "" {
		return ""
	}
	user := a.Username
	if user == "" {
		user = "x-access-token"
	}
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + a.Password))
}

var urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@`)

// redact removes the credentials, in every form git could echo them, and any
// user information embedded in URLs from s.
func (a GitAuth) redact(s string) string {
	for _, secret := range []string{a.basic(), a.Password} {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "***")
		}
	}
	return urlUserinfo.ReplaceAllString(s, "${1}***@")
}

// allowedProtocols are the only transports git may use. Above all this
// excludes "ext::", which runs an arbitrary command, and "git://", whose
// core.gitProxy command no setting of ours can switch off (and which
// GitHub no longer serves).
const allowedProtocols = "https:http:ssh:file"

// gitHome is the HOME of every git process: a directory that does not
// exist, so no ~/.gitconfig, ~/.config/git/*, ~/.git-credentials or
// ~/.netrc a test may have written is ever read.
const gitHome = "/nonexistent"

// passedEnv are the only variables of the worker's environment its git
// sees: where programs are, where temporary files go, and how this box
// reaches the network (proxies and the TLS trust store an operator set).
// Nothing named GIT_*, GITHUB_*, NATS_*, YCI_*, no SSH_AUTH_SOCK, no
// locale: git runs with LC_ALL=C so its messages in our errors and
// statuses read the same on every box.
var passedEnv = []string{
	"PATH", "TMPDIR",
	"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// gitConfig is the configuration every git process gets on its command
// line (through GIT_CONFIG_COUNT, so it is never written anywhere and
// outranks every config file). With GIT_CONFIG_NOSYSTEM and
// GIT_CONFIG_GLOBAL=/dev/null no machine-wide or per-user file is read at
// all; these keys also hold against a repository's own config, which a
// test could have written:
//   - core.hooksPath=/dev/null: no hook runs, wherever it was planted;
//   - core.fsmonitor=false: no fsmonitor command runs on checkout;
//   - credential.helper="": no helper stores or supplies credentials;
//   - http.extraHeader="": only the worker's own header is sent.
//
// Keys that run commands and cannot be switched off from here (a
// .gitattributes filter's clean/smudge/process, diff.external, a merge
// driver, core.pager, core.editor, core.sshCommand) are inert: a filter,
// driver or pager exists only where config defines it, and the only
// config read is a repository's own, which resetMirror rewrites for the
// mirror and which a checkout gets fresh from git init; git runs with no
// terminal, and GIT_SSH_COMMAND outranks core.sshCommand.
var gitConfig = [][2]string{
	{"core.hooksPath", "/dev/null"},
	{"core.fsmonitor", "false"},
	{"credential.helper", ""},
	{"http.extraHeader", ""},
	// Garbage collection runs within our lock and timeout, not detached.
	{"gc.autoDetach", "false"},
	{"advice.detachedHead", "false"},
}

// gitEnv is the environment of every git process, built from nothing but
// passedEnv and fixed settings: see passedEnv and gitConfig for what they
// keep out. auth's header is added to the command-line configuration.
func gitEnv(auth GitAuth) []string {
	env := []string{
		"HOME=" + gitHome,
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_ATTR_NOSYSTEM=1",
		// Replacement refs could make a commit id stand for other content.
		"GIT_NO_REPLACE_OBJECTS=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		"GIT_SSH_COMMAND=ssh -o BatchMode=yes",
		"GIT_ALLOW_PROTOCOL=" + allowedProtocols,
	}
	for _, name := range passedEnv {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	config := gitConfig
	if b := auth.basic(); b != "" {
		config = append(slices.Clip(config), [2]string{"http.extraHeader", "Authorization: Basic " + b})
	}
	env = append(env, "GIT_CONFIG_COUNT="+strconv.Itoa(len(config)))
	for i, kv := range config {
		env = append(env,
			"GIT_CONFIG_KEY_"+strconv.Itoa(i)+"="+kv[0],
			"GIT_CONFIG_VALUE_"+strconv.Itoa(i)+"="+kv[1])
	}
	return env
}

// git runs git in the workspace's root with GitTimeout; see runGit.
func (m *Mirrors) git(ctx context.Context, auth GitAuth, args ...string) ([]byte, error) {
	timeout := m.GitTimeout
	if timeout <= 0 {
		timeout = DefaultGitTimeout
	}
	return runGit(ctx, timeout, m.layout.root, auth, args...)
}

// runGit runs git with args in dir and returns its standard output. It never
// involves a shell, and runs with gitEnv's environment only; the process
// group is killed when ctx ends or timeout passes. The error carries git's
// standard error with credentials redacted.
func runGit(ctx context.Context, timeout time.Duration, dir string, auth GitAuth, args ...string) ([]byte, error) {
	out, err := runGitWith(ctx, timeout, dir, auth, nil, nil, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// gitWith is git with extra environment variables (on top of gitEnv's)
// and stdin; unlike git it returns what git printed even when it failed,
// for commands whose exit status is an answer (merge-tree's 1: conflicts).
func (m *Mirrors) gitWith(ctx context.Context, env []string, stdin io.Reader, args ...string) ([]byte, error) {
	timeout := m.GitTimeout
	if timeout <= 0 {
		timeout = DefaultGitTimeout
	}
	return runGitWith(ctx, timeout, m.layout.root, GitAuth{}, env, stdin, args...)
}

// runGitWith is runGit with env added to gitEnv's environment and stdin
// as git's input; its standard output is returned even with an error.
func runGitWith(ctx context.Context, timeout time.Duration, dir string, auth GitAuth, env []string, stdin io.Reader, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(gitEnv(auth), env...)
	cmd.Stdin = stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	if err := cmd.Run(); err != nil {
		if cmd.ProcessState == nil || !cmd.ProcessState.Exited() {
			gitKilled.Add(1)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%w)", ctxErr, err)
		}
		return stdout.Bytes(), fmt.Errorf("git %s: %w: %s", gitVerb(args), err, tail(auth.redact(stderr.String()), 2000))
	}
	return stdout.Bytes(), nil
}

// gitKilled counts the git processes of this process that did not end on
// their own (killed at a timeout, by the OOM killer, or never waited
// for): such a process may have left lock files in a mirror, which the
// mirror's next lockMirror must then look for.
var gitKilled atomic.Uint64

// gitVerb names the git subcommand in args for error messages, skipping
// global options such as --git-dir.
func gitVerb(args []string) string {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return "(no subcommand)"
}

func tail(s string, max int) string {
	s = strings.TrimSpace(s)
	if len(s) > max {
		s = "…" + s[len(s)-max:]
	}
	return s
}

// validateSHA accepts a full lowercase commit id (events.ValidateSHA: 40
// or 64 hex digits). Abbreviations and ref names are refused, so what is
// checked out is exactly the commit that was asked for.
func validateSHA(sha string) error {
	if err := events.ValidateSHA(sha); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// validateCloneURL accepts https, http, ssh and file URLs, or an
// absolute local path. It refuses passwords in URLs (credentials travel in
// GitAuth) and any user information in http(s) URLs, since a URL is what git
// echoes in its messages.
func validateCloneURL(raw string) error {
	if raw == "" || strings.HasPrefix(raw, "-") || strings.ContainsAny(raw, "\x00\n\r") {
		return fmt.Errorf("%w: clone URL is empty or malformed", ErrInvalid)
	}
	if strings.HasPrefix(raw, "/") {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: clone URL: %w", ErrInvalid, errors.Unwrap(err))
	}
	switch u.Scheme {
	case "https", "http", "file":
		if u.User != nil {
			return fmt.Errorf("%w: clone URL must not carry user information; pass credentials as GitAuth", ErrInvalid)
		}
	case "ssh":
		if _, hasPassword := u.User.Password(); hasPassword {
			return fmt.Errorf("%w: clone URL must not carry a password; pass credentials as GitAuth", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: clone URL scheme %q not allowed", ErrInvalid, u.Scheme)
	}
	if u.Scheme != "file" && u.Host == "" {
		return fmt.Errorf("%w: clone URL has no host", ErrInvalid)
	}
	return nil
}
