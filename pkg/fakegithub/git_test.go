package fakegithub_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/fakegithub"
)

func TestGitOverHTTP(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	url := s.URL() + "/acme/widgets.git"
	user, pass := s.BasicAuth()

	tests := []struct {
		name   string
		auth   string
		wantOK bool
	}{
		{name: "token_as_password_clones", auth: basicHeader("x-access-token", s.Token()), wantOK: true},
		{name: "token_as_username_clones", auth: basicHeader(s.Token(), "x-oauth-basic"), wantOK: true},
		{name: "username_and_password_clone", auth: basicHeader(user, pass), wantOK: true},
		{name: "no_credentials_are_refused", auth: "", wantOK: false},
		{name: "wrong_token_is_refused", auth: basicHeader("x-access-token", "ghp_wrong"), wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out, err := git(t, dir, tt.auth, "clone", "--quiet", url, "w")
			if (err == nil) != tt.wantOK {
				t.Fatalf("clone error = %v (%s), want success %v", err, out, tt.wantOK)
			}
			if !tt.wantOK {
				return
			}
			info, err := os.Stat(filepath.Join(dir, "w", "test.sh"))
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode()&0o100 == 0 {
				t.Errorf("test.sh mode %v, want executable", info.Mode())
			}
		})
	}

	t.Run("push_is_refused", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		auth := basicHeader("x-access-token", s.Token())
		if out, err := git(t, dir, auth, "clone", "--quiet", url, "w"); err != nil {
			t.Fatalf("clone: %v: %s", err, out)
		}
		work := filepath.Join(dir, "w")
		if out, err := git(t, work, "", "commit", "--quiet", "--allow-empty", "-m", "sneaky"); err != nil {
			t.Fatalf("commit: %v: %s", err, out)
		}
		if out, err := git(t, work, auth, "push", "--quiet", "origin", "HEAD:main"); err == nil {
			t.Errorf("push succeeded: %s", out)
		}
	})
}

func TestPullRefs(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	first := openPull(t, s, "feature", fakegithub.PullSpec{}).GetHead().GetSHA()
	pushed, err := s.PushPull("acme", "widgets", 1, map[string]string{"b.txt": "b\n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fork("acme", "widgets", "mallory"); err != nil {
		t.Fatal(err)
	}
	forkHead, err := s.Commit("mallory", "widgets", "evil", map[string]string{"evil.sh": "echo pwned\n"}, "Evil")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenPull("acme", "widgets", fakegithub.PullSpec{Head: "evil", Author: "mallory", Fork: true}); err != nil {
		t.Fatal(err)
	}
	forced, err := s.ForcePushPull("acme", "widgets", 1, map[string]string{"c.txt": "c\n"})
	if err != nil {
		t.Fatal(err)
	}
	mirror := filepath.Join(t.TempDir(), "mirror.git")
	auth := basicHeader("x-access-token", s.Token())
	if out, err := git(t, "", auth, "clone", "--quiet", "--mirror", s.URL()+"/acme/widgets.git", mirror); err != nil {
		t.Fatalf("mirror clone: %v: %s", err, out)
	}
	rev := func(ref string) string {
		out, err := git(t, mirror, "", "rev-parse", "--verify", "--quiet", ref)
		if err != nil {
			return ""
		}
		return out
	}

	t.Run("force_push_moves_pull_ref_and_branch", func(t *testing.T) {
		if got := rev("refs/pull/1/head"); got != forced {
			t.Errorf("refs/pull/1/head = %s, want %s", got, forced)
		}
		if got := rev("refs/heads/feature"); got != forced {
			t.Errorf("feature = %s, want %s", got, forced)
		}
	})

	t.Run("force_push_drops_the_old_head_from_history", func(t *testing.T) {
		if _, err := git(t, mirror, "", "merge-base", "--is-ancestor", pushed, forced); err == nil {
			t.Errorf("old head %s is still an ancestor of %s", pushed, forced)
		}
		if _, err := git(t, mirror, "", "merge-base", "--is-ancestor", first, forced); err != nil {
			t.Errorf("amended commit should keep the old head's parent %s: %v", first, err)
		}
		tree, err := git(t, mirror, "", "ls-tree", "--name-only", forced)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"b.txt", "c.txt", "feature.txt", "test.sh"} {
			if !strings.Contains(tree, f) {
				t.Errorf("amended tree %q lacks %s", tree, f)
			}
		}
	})

	t.Run("fork_head_is_only_reachable_through_the_pull_ref", func(t *testing.T) {
		if got := rev("refs/pull/2/head"); got != forkHead {
			t.Errorf("refs/pull/2/head = %s, want fork head %s", got, forkHead)
		}
		if got := rev("refs/heads/evil"); got != "" {
			t.Errorf("base repository has the fork's branch evil at %s", got)
		}
	})

	t.Run("commit_to_a_fork_branch_updates_the_pull", func(t *testing.T) {
		sha, err := s.Commit("mallory", "widgets", "evil", map[string]string{"more.sh": "echo more\n"}, "More")
		if err != nil {
			t.Fatal(err)
		}
		pr, err := s.Pull("acme", "widgets", 2)
		if err != nil {
			t.Fatal(err)
		}
		if pr.GetHead().GetSHA() != sha || pr.GetCommits() != 2 {
			t.Errorf("pull head %s with %d commits, want %s with 2", pr.GetHead().GetSHA(), pr.GetCommits(), sha)
		}
		if out, err := git(t, mirror, auth, "fetch", "--quiet", "origin", "+refs/pull/2/head:refs/pull/2/head"); err != nil {
			t.Fatalf("fetch: %v: %s", err, out)
		}
		if got := rev("refs/pull/2/head"); got != sha {
			t.Errorf("refs/pull/2/head = %s, want %s", got, sha)
		}
	})
}

func TestBranchNames(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	tests := []struct {
		branch string
		wantOK bool
	}{
		{branch: `zzz";echo${IFS}pwned;#`, wantOK: true},
		{branch: "feature/nested", wantOK: true},
		{branch: "$(touch /tmp/pwned)", wantOK: false},
		{branch: "--upload-pack=touch", wantOK: false},
		{branch: "a..b", wantOK: false},
		{branch: "x.lock", wantOK: false},
		{branch: "tail/", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.branch, func(t *testing.T) {
			sha, err := s.Commit("acme", "widgets", tt.branch, map[string]string{"f": "x\n"}, "m")
			if (err == nil) != tt.wantOK {
				t.Fatalf("Commit = %s, %v; want success %v", sha, err, tt.wantOK)
			}
			if !tt.wantOK {
				return
			}
			out, err := git(t, "", "", "check-ref-format", "--branch", tt.branch)
			if err != nil || out != tt.branch {
				t.Errorf("git check-ref-format --branch %q = %q, %v", tt.branch, out, err)
			}
		})
	}
}
