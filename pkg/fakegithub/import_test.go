package fakegithub_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/fakegithub"
)

// TestImportBranch: a branch imported from a real repository carries that
// repository's commits, history included, moves forward and back as a
// forced push would, is the base new commits and pull requests build on,
// and is refused on an open pull request's head.
func TestImportBranch(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	if _, err := s.CreateRepo("acme", "widgets"); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "project")
	mustGit(t, t.TempDir(), "init", "--quiet", "--initial-branch=trunk", src)
	var shas []string
	for _, msg := range []string{"one", "two", "three"} {
		mustGit(t, src, "commit", "--quiet", "--allow-empty", "-m", msg)
		shas = append(shas, mustGit(t, src, "rev-parse", "HEAD"))
	}
	url := s.URL() + "/acme/widgets.git"
	auth := basicHeader("x-access-token", s.Token())

	for _, tc := range []struct {
		name, rev string
		want      string // the main branch's tip
		wantLog   string // its history, oldest first
	}{
		{name: "a_commit_with_its_history", rev: "trunk~1", want: shas[1], wantLog: "one two"},
		{name: "forward", rev: "trunk", want: shas[2], wantLog: "one two three"},
		{name: "back_as_a_forced_push", rev: shas[0], want: shas[0], wantLog: "one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ImportBranch("acme", "widgets", "main", src, tc.rev)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ImportBranch = %s, want %s", got, tc.want)
			}
			remote := mustGit(t, t.TempDir(), "-c", "http.extraHeader=Authorization: "+auth, "ls-remote", url, "refs/heads/main")
			if !strings.HasPrefix(remote, tc.want) {
				t.Errorf("the served main is %q, want %s", remote, tc.want)
			}
			clone := filepath.Join(t.TempDir(), "c")
			mustGit(t, t.TempDir(), "-c", "http.extraHeader=Authorization: "+auth, "clone", "--quiet", url, clone)
			if log := strings.Join(strings.Fields(mustGit(t, clone, "log", "--reverse", "--format=%s")), " "); log != tc.wantLog {
				t.Errorf("history %q, want %q", log, tc.wantLog)
			}
		})
	}

	// The stand-in's own commits and pulls build on the imported tip.
	head, err := s.Commit("acme", "widgets", "feature", map[string]string{"f.txt": "f\n"}, "feature")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := s.OpenPull("acme", "widgets", fakegithub.PullSpec{Head: "feature"})
	if err != nil {
		t.Fatal(err)
	}
	if got := pr.GetBase().GetSHA(); got != shas[0] {
		t.Errorf("the pull's base is %s, want the imported %s", got, shas[0])
	}
	if _, err := s.ImportBranch("acme", "widgets", "feature", src, "trunk"); err == nil || !strings.Contains(err.Error(), "PushPull") {
		t.Errorf("importing onto an open pull's head: %v, want a refusal naming PushPull", err)
	}
	if got, err := s.Pull("acme", "widgets", pr.GetNumber()); err != nil || got.GetHead().GetSHA() != head {
		t.Errorf("the refused import moved the pull's head: %s, %v", got.GetHead().GetSHA(), err)
	}
	for _, bad := range []struct{ branch, rev string }{{"main", "no-such-rev"}, {"bad..name", "trunk"}} {
		if _, err := s.ImportBranch("acme", "widgets", bad.branch, src, bad.rev); err == nil {
			t.Errorf("ImportBranch(%q, %q) succeeded", bad.branch, bad.rev)
		}
	}
}

func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := git(t, dir, "", args...)
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return out
}
