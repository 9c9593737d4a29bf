package fakegithub

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// gitTimeout bounds every git command the scenario runs.
const gitTimeout = time.Minute

// maxGitRequestBody bounds a buffered chunked git request (a fetch's list of
// wants and haves); CGI needs a known length.
const maxGitRequestBody = 64 << 20

// gitEnv isolates git from the machine's and the user's configuration.
func (s *Server) gitEnv() []string {
	return append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
		"HOME="+s.dir,
	)
}

// runGit runs git with args, in the bare repository gitDir unless it is
// empty, feeding stdin, and returns its standard output.
func (s *Server) runGit(ctx context.Context, gitDir string, stdin io.Reader, args ...string) (string, error) {
	sub := args[0]
	if gitDir != "" {
		args = append([]string{"--git-dir=" + gitDir}, args...)
	}
	cmd := exec.CommandContext(ctx, s.gitBin, args...)
	cmd.Env = s.gitEnv()
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", sub, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// commitSpec describes a commit written with git fast-import.
type commitSpec struct {
	ref      string // ref to move, such as refs/heads/main
	parent   string // "" for a root commit
	tree     string // tree to start from instead of the parent's; "" = the parent's
	files    map[string]string
	message  string
	author   string   // login of author and committer
	merges   []string // more parents, for a merge commit
	alsoRefs []string // more refs to point at the new commit
	force    bool     // allow non-fast-forward ref updates
}

// writeCommit creates one commit in gitDir in a single git fast-import
// run and returns its sha. Files ending in .sh or starting with "#!" are
// executable.
func (s *Server) writeCommit(ctx context.Context, gitDir string, c commitSpec) (string, error) {
	var b strings.Builder
	who := fmt.Sprintf("%s <%s@users.noreply.fakegithub.invalid> %d +0000", c.author, c.author, time.Now().Unix())
	fmt.Fprintf(&b, "commit %s\nmark :1\nauthor %s\ncommitter %s\ndata %d\n%s\n", c.ref, who, who, len(c.message), c.message)
	if c.parent != "" {
		fmt.Fprintf(&b, "from %s\n", c.parent)
	}
	for _, m := range c.merges {
		fmt.Fprintf(&b, "merge %s\n", m)
	}
	if c.tree != "" {
		fmt.Fprintf(&b, "M 040000 %s \"\"\n", c.tree)
	}
	paths := make([]string, 0, len(c.files))
	for p := range c.files {
		if err := validFilePath(p); err != nil {
			return "", err
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		content := c.files[p]
		mode := "100644"
		if strings.HasSuffix(p, ".sh") || strings.HasPrefix(content, "#!") {
			mode = "100755"
		}
		fmt.Fprintf(&b, "M %s inline %s\ndata %d\n%s\n", mode, quotePath(p), len(content), content)
	}
	for _, ref := range c.alsoRefs {
		fmt.Fprintf(&b, "reset %s\nfrom :1\n", ref)
	}
	b.WriteString("get-mark :1\ndone\n")
	args := []string{"fast-import", "--quiet", "--done"}
	if c.force {
		args = append(args, "--force")
	}
	out, err := s.runGit(ctx, gitDir, strings.NewReader(b.String()), args...)
	if err != nil {
		return "", fmt.Errorf("writing commit on %s: %w", c.ref, err)
	}
	sha := strings.TrimSpace(out)
	if !shaPattern.MatchString(sha) {
		return "", fmt.Errorf("writing commit on %s: fast-import answered %q", c.ref, out)
	}
	return sha, nil
}

// quotePath quotes a path for fast-import; validFilePath has already
// refused control characters.
func quotePath(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(p) + `"`
}

// validFilePath refuses paths git would not store or that escape the tree.
func validFilePath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return fmt.Errorf("invalid file path %q", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("invalid file path %q: control character", p)
		}
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." || strings.EqualFold(part, ".git") {
			return fmt.Errorf("invalid file path %q", p)
		}
	}
	return nil
}

// validBranch applies git check-ref-format --branch's rules, so names such
// as `zzz";echo${IFS}pwned;#` are accepted exactly when git accepts them.
func validBranch(name string) error {
	bad := name == "" || name == "@" || strings.HasPrefix(name, "-") || strings.HasPrefix(name, "/") ||
		strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") ||
		strings.Contains(name, "..") || strings.Contains(name, "//") || strings.Contains(name, "@{")
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			bad = true
		}
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("invalid branch name %q", name)
	}
	return nil
}

// splitGitPath recognises /{owner}/{repo}.git/... paths.
func splitGitPath(path string) (owner, name string, ok bool) {
	parts := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 3)
	if len(parts) < 3 || !strings.HasSuffix(parts[1], ".git") {
		return "", "", false
	}
	owner, name = parts[0], strings.TrimSuffix(parts[1], ".git")
	if validRepoName(owner, name) != nil {
		return "", "", false
	}
	return owner, name, true
}

// gitHandler serves git's smart HTTP protocol, read-only, through git
// http-backend. A git process lives as long as its request: net/http/cgi
// kills it when the client goes away.
func (s *Server) gitHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		owner, name, _ := splitGitPath(r.URL.Path)
		s.gitRequest()
		if f := s.takeFailure(r.Method, r.URL.Path); f != nil {
			s.writeText(w, f.status, f.header, http.StatusText(f.status))
			return
		}
		var who *identity
		if user, pass, ok := r.BasicAuth(); ok {
			who = s.basicIdentity(user, pass)
		}
		if who == nil {
			s.writeText(w, http.StatusUnauthorized, http.Header{"Www-Authenticate": {`Basic realm="GitHub"`}},
				"Invalid username or token. Password authentication is not supported for Git operations.")
			return
		}
		rp := s.lookupRepo(owner, name)
		s.mu.Lock()
		visible := rp != nil && s.canAccessLocked(who, rp.fullName())
		s.mu.Unlock()
		if !visible {
			s.writeText(w, http.StatusNotFound, nil, "Repository not found.")
			return
		}
		if r.URL.Query().Get("service") == "git-receive-pack" || strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			s.writeText(w, http.StatusForbidden, nil, fmt.Sprintf("Permission to %s/%s.git denied to %s.", owner, name, who.login))
			return
		}
		s.serveBackend(w, r)
	})
}

// serveBackend hands an authorised request to git http-backend, without
// the caller's credentials.
func (s *Server) serveBackend(w http.ResponseWriter, r *http.Request) {
	r = r.Clone(r.Context())
	r.Header.Del("Authorization")
	if r.ContentLength < 0 || len(r.TransferEncoding) > 0 {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxGitRequestBody+1))
		if err != nil || len(body) > maxGitRequestBody {
			s.writeText(w, http.StatusRequestEntityTooLarge, nil, "request too large or unreadable")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.TransferEncoding = nil
	}
	log := s.logger()
	h := &cgi.Handler{
		Path: s.gitBin,
		Args: []string{"http-backend"},
		Dir:  s.dir,
		Env: []string{
			"GIT_PROJECT_ROOT=" + filepath.Join(s.dir, "git"),
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=" + os.DevNull,
			"HOME=" + s.dir,
		},
		Logger: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Stderr: logWriter{log: log},
	}
	h.ServeHTTP(w, r)
}

// writeText answers a git client with a plain-text message.
func (s *Server) writeText(w http.ResponseWriter, status int, header http.Header, msg string) {
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	if _, err := io.WriteString(w, msg+"\n"); err != nil {
		s.logger().Debug("writing git answer", "err", err)
	}
}

// logWriter turns git http-backend's standard error into log lines.
type logWriter struct{ log *slog.Logger }

func (l logWriter) Write(p []byte) (int, error) {
	l.log.Warn("git http-backend", "stderr", strings.TrimSpace(string(p)))
	return len(p), nil
}
