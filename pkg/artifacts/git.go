package artifacts

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
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
// excludes "ext::", which runs an arbitrary command.
const allowedProtocols = "https:http:ssh:git:file"

// gitEnv is the environment of every git process: the worker's own minus
// every GIT_* variable, plus a fixed configuration passed through
// GIT_CONFIG_COUNT so it is never written anywhere.
func gitEnv(auth GitAuth) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	config := [][2]string{
		// An empty helper resets the list: no helper configured on this
		// box may store or supply credentials behind our back.
		{"credential.helper", ""},
		// Garbage collection runs within our lock and timeout, not detached.
		{"gc.autoDetach", "false"},
		{"advice.detachedHead", "false"},
	}
	if b := auth.basic(); b != "" {
		config = append(config, [2]string{"http.extraHeader", "Authorization: Basic " + b})
	}
	env = append(env,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		"GIT_SSH_COMMAND=ssh -o BatchMode=yes",
		"GIT_ALLOW_PROTOCOL="+allowedProtocols,
		"GIT_CONFIG_COUNT="+strconv.Itoa(len(config)),
	)
	for i, kv := range config {
		env = append(env,
			"GIT_CONFIG_KEY_"+strconv.Itoa(i)+"="+kv[0],
			"GIT_CONFIG_VALUE_"+strconv.Itoa(i)+"="+kv[1])
	}
	return env
}

// git runs git with args and returns its standard output. It never involves
// a shell; the process group is killed when ctx ends or the workspace's git
// timeout passes. The error carries git's standard error with credentials
// redacted.
func (w *Workspace) git(ctx context.Context, auth GitAuth, args ...string) ([]byte, error) {
	timeout := w.GitTimeout
	if timeout <= 0 {
		timeout = DefaultGitTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = w.root
	cmd.Env = gitEnv(auth)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%w)", ctxErr, err)
		}
		return nil, fmt.Errorf("git %s: %w: %s", gitVerb(args), err, tail(auth.redact(stderr.String()), 2000))
	}
	return stdout.Bytes(), nil
}

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

// validateCloneURL accepts https, http, ssh, git and file URLs, or an
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
	case "https", "http", "git", "file":
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
