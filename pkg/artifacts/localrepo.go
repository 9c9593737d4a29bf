package artifacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotRepository means a directory is not the top level of a git working
// tree, so copies of it cannot be given a .git.
var ErrNotRepository = errors.New("not the top level of a git working tree")

// LocalRepo is a snapshot of a user's own checkout, taken once per local
// run, from which each test's copy of the working tree gets a .git of its
// own (Attach). It is safe for concurrent use.
type LocalRepo struct {
	objects    string   // the repository's object directory, borrowed
	borrowed   []string // the object directories objects borrows in turn
	format     string   // its object format: sha1 or sha256
	packedRefs []byte
	head       string // HEAD's content: "ref: refs/heads/x" or a commit id
	born       bool   // whether HEAD names a commit
}

// ReadLocalRepo reads the branches, remote-tracking branches, tags and HEAD
// of the repository whose working tree's top level is dir (a linked
// worktree's too). It runs git as the worker does (see gitEnv): the user's
// repository is read, but nothing of its or the user's configuration runs.
// The error wraps ErrNotRepository when dir is not such a top level.
func ReadLocalRepo(ctx context.Context, dir string) (*LocalRepo, error) {
	git := func(args ...string) (string, error) {
		out, err := runGit(ctx, DefaultGitTimeout, dir, GitAuth{}, args...)
		return strings.TrimSpace(string(out)), err
	}
	out, err := git("rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir", "--show-object-format")
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", dir, ErrNotRepository, err)
	}
	lines := strings.Split(out, "\n")
	if len(lines) != 3 {
		return nil, fmt.Errorf("%s: %w: git rev-parse said %q", dir, ErrNotRepository, out)
	}
	top, common, format := lines[0], lines[1], lines[2]
	if same, err := samePath(top, dir); err != nil || !same {
		return nil, fmt.Errorf("%s: %w (the top level is %s)", dir, ErrNotRepository, top)
	}
	r := &LocalRepo{objects: filepath.Join(common, "objects"), format: format}
	if r.borrowed, err = borrowedObjects(r.objects); err != nil {
		return nil, fmt.Errorf("reading the alternates of %s: %w", dir, err)
	}
	refs, err := git("for-each-ref", "--format=%(objectname) %(refname) %(symref)", "refs/heads/", "refs/remotes/", "refs/tags/")
	if err != nil {
		return nil, fmt.Errorf("listing the refs of %s: %w", dir, err)
	}
	var packed bytes.Buffer
	for line := range strings.Lines(refs) {
		// Symbolic refs (origin/HEAD) cannot be packed; nothing needs them.
		if id, ref, ok := strings.Cut(strings.TrimSpace(line), " "); ok && !strings.Contains(ref, " ") {
			fmt.Fprintf(&packed, "%s %s\n", id, ref)
		}
	}
	r.packedRefs = packed.Bytes()
	if branch, err := git("symbolic-ref", "-q", "HEAD"); err == nil && branch != "" {
		r.head = "ref: " + branch
	}
	if sha, err := git("rev-parse", "-q", "--verify", "HEAD^{commit}"); err == nil && sha != "" {
		r.born = true
		if r.head == "" {
			r.head = sha
		}
	}
	if r.head == "" {
		return nil, fmt.Errorf("%s: HEAD is neither a branch nor a commit", dir)
	}
	return r, nil
}

// Attach gives dst, a copy of the repository's working tree without any
// .git, a .git of its own that behaves like a clone sharing the user's
// objects (git clone --shared): the user's branches, remote-tracking
// branches and tags, HEAD as the user's (on the same branch, or detached
// at the same commit), and an index at HEAD, so that the copy's
// uncommitted changes show as changes. Nothing of the user's repository
// is written; the copy borrows its objects, so a commit made in the copy
// stays in the copy.
func (r *LocalRepo) Attach(ctx context.Context, dst string) error {
	git := func(args ...string) error {
		_, err := runGit(ctx, DefaultGitTimeout, dst, GitAuth{}, args...)
		return err
	}
	if err := git("init", "--quiet", "--template=", "--object-format="+r.format, "--", dst); err != nil {
		return err
	}
	gitDir := filepath.Join(dst, ".git")
	if err := os.MkdirAll(filepath.Join(gitDir, "objects", "info"), 0o755); err != nil {
		return fmt.Errorf("giving %s a .git: %w", dst, err)
	}
	for _, f := range []struct{ name, content string }{
		{filepath.Join("objects", "info", "alternates"), r.objects + "\n"},
		{"packed-refs", string(r.packedRefs)},
		{"HEAD", r.head + "\n"},
	} {
		if err := os.WriteFile(filepath.Join(gitDir, f.name), []byte(f.content), 0o644); err != nil {
			return fmt.Errorf("giving %s a .git: %w", dst, err)
		}
	}
	if !r.born {
		return nil
	}
	return git("--git-dir="+gitDir, "--work-tree="+dst, "reset", "--quiet")
}

// ObjectDirs are the object directories a copy given a .git by Attach
// reads: the user's repository's, and those it borrows in turn through its
// own alternates. A sandboxed command working in such a copy must see them
// (read-only) for git to read any commit.
func (r *LocalRepo) ObjectDirs() []string {
	return append([]string{r.objects}, r.borrowed...)
}

// maxAlternates is how deep git itself follows alternates of alternates.
const maxAlternates = 5

// borrowedObjects lists the object directories objects borrows through
// objects/info/alternates, following theirs in turn as git does; relative
// entries are relative to the directory that lists them.
func borrowedObjects(objects string) ([]string, error) {
	var out []string
	seen := map[string]bool{objects: true}
	level := []string{objects}
	for depth := 0; depth < maxAlternates && len(level) > 0; depth++ {
		var next []string
		for _, dir := range level {
			data, err := os.ReadFile(filepath.Join(dir, "info", "alternates"))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for line := range strings.Lines(string(data)) {
				alt := strings.TrimSpace(line)
				if alt == "" || strings.HasPrefix(alt, "#") {
					continue
				}
				if !filepath.IsAbs(alt) {
					alt = filepath.Join(dir, alt)
				}
				if alt = filepath.Clean(alt); !seen[alt] {
					seen[alt] = true
					out = append(out, alt)
					next = append(next, alt)
				}
			}
		}
		level = next
	}
	return out, nil
}

// samePath reports whether a and b name the same directory.
func samePath(a, b string) (bool, error) {
	ai, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	bi, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(ai, bi), nil
}
