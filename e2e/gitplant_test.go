package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/fakegithub"
)

// TestPlantedGitConfigAndMirrorHooksDoNotRun plays a test that tries to
// run code as the worker through git: the worker's ~/.gitconfig names a
// hooks directory, an fsmonitor and a URL rewrite to a dead host, and the
// first build's test writes hooks and config into the repository's mirror,
// found by walking up from its checkout. Both plants are shown to work
// against plain git; the worker's fetch and checkouts of that build and of
// the next push run none of them and still reach the right server.
func TestPlantedGitConfigAndMirrorHooksDoNotRun(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	ran := filepath.Join(s.dir, "planted-ran")
	home := filepath.Join(s.dir, "home")
	hooks := filepath.Join(s.dir, "planted-hooks")
	planted := filepath.Join(s.dir, "planted.sh")
	writeFile(t, planted, "#!/bin/sh\ntouch "+shellQuote(ran)+"/\"$(basename \"$0\")-$$\"\n", 0o755)
	for _, hook := range []string{"reference-transaction", "post-checkout", "post-index-change"} {
		writeFile(t, filepath.Join(hooks, hook), "#!/bin/sh\nexec "+shellQuote(planted)+"\n", 0o755)
	}
	writeFile(t, filepath.Join(home, ".gitconfig"), "[core]\n\thooksPath = "+hooks+"\n\tfsmonitor = "+planted+
		"\n[url \"http://127.0.0.1:1/\"]\n\tinsteadOf = "+s.gh.URL()+"/\n", 0o644)
	if err := os.MkdirAll(ran, 0o755); err != nil {
		t.Fatal(err)
	}

	w := s.startWorker("worker", "YCI_JOBS=1", "HOME="+home)
	// The test's checkout is <repo>/pulls/<pr>/<build>/<name>/source; the
	// mirror is <repo>/source.
	plant := `if [ "$YCI_BUILD" = 1 ]; then
  mirror=$(cd ../../../../../source && pwd)
  test -f "$mirror/config"
  mkdir -p "$mirror/hooks"
  for h in reference-transaction post-checkout; do
    printf '#!/bin/sh\nexec %s\n' ` + shellQuote(shellQuote(planted)) + ` > "$mirror/hooks/$h"
    chmod +x "$mirror/hooks/$h"
  done
  printf '[core]\n\tfsmonitor = %s\n' ` + shellQuote(planted) + ` >> "$mirror/config"
  echo "planted in $mirror"
fi`
	n, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"plant"}, 0, 0), "test.sh": s.script(plant)})
	if st := s.waitFinal(sha, "yci/plant")["yci/plant"]; st.GetState() != "success" {
		t.Fatalf("first build: %s %q (the fetch must reach the real server):\n%s", st.GetState(), st.GetDescription(), s.history(sha))
	}
	checkNothingRan(t, ran, "the first build")

	// The controls: both plants run under plain git.
	mirror := s.workspacePath(w.name, owner, repoName, "source")
	scratch := filepath.Join(s.dir, "scratch")
	plainGit(t, home, "init", "--quiet", scratch)
	plainGit(t, home, "-C", scratch, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "--allow-empty", "-m", "x")
	if entries, _ := os.ReadDir(ran); len(entries) == 0 {
		t.Fatal("control: the planted ~/.gitconfig does not run under plain git")
	}
	clearDir(t, ran)
	plainGit(t, t.TempDir(), "--git-dir="+mirror, "update-ref", "refs/control/mirror", sha)
	if entries, _ := os.ReadDir(ran); len(entries) == 0 {
		t.Fatal("control: the hook the test planted in the mirror does not run under plain git")
	}
	clearDir(t, ran)

	sha2 := s.push(n)
	if st := s.waitFinal(sha2, "yci/plant")["yci/plant"]; st.GetState() != "success" {
		t.Fatalf("second build: %s %q:\n%s", st.GetState(), st.GetDescription(), s.history(sha2))
	}
	checkNothingRan(t, ran, "the second build's fetch and checkouts")
	if _, err := os.Stat(filepath.Join(mirror, "hooks")); !os.IsNotExist(err) {
		t.Errorf("the mirror's planted hooks survived the worker's next fetch (%v)", err)
	}
}

func checkNothingRan(t *testing.T, dir, when string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) > 0 {
		t.Errorf("planted code ran during %s: %s", when, strings.Join(names, ", "))
	}
}

// plainGit runs git as a careless CI would, with HOME=home and whatever
// config it finds; only its side effects matter.
func plainGit(t *testing.T, home string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("plain git %v: %v: %s", args, err, out)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func clearDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestServiceCheckoutBehavesLikeAClone shows what a test sees of git in
// the service: HEAD at the commit under test, the base branch as main and
// origin/main, tags for git describe, and the branch names as YCI_*_REF.
func TestServiceCheckoutBehavesLikeAClone(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", "YCI_JOBS=1")
	base, err := s.gh.Commit(owner, repoName, "main", map[string]string{"README.md": "widgets\n"}, "Initial commit")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.gh.Tag(owner, repoName, "v1.0", base); err != nil {
		t.Fatal(err)
	}
	probe := `echo "head=$(git rev-parse HEAD)"
echo "main=$(git rev-parse main) $(git rev-parse origin/main)"
echo "describe=$(git describe --tags --abbrev=0)"
echo "refs=$YCI_HEAD_REF $YCI_BASE_REF"
echo "changes=$(git status --porcelain | wc -l)"`
	if _, err := s.gh.Commit(owner, repoName, "feature", map[string]string{".yci.py": yciPy([]string{"clone"}, 0, 0), "test.sh": s.script(probe)}, "Add tests"); err != nil {
		t.Fatal(err)
	}
	pr, err := s.gh.OpenPull(owner, repoName, fakegithub.PullSpec{Head: "feature", Title: "Add tests"})
	if err != nil {
		t.Fatal(err)
	}
	sha := pr.GetHead().GetSHA()
	if st := s.waitFinal(sha, "yci/clone")["yci/clone"]; st.GetState() != "success" {
		t.Fatalf("probe: %s %q:\n%s", st.GetState(), st.GetDescription(), s.history(sha))
	}
	log, err := os.ReadFile(s.workspacePath(w.name, owner, repoName, "pulls", strconv.Itoa(pr.GetNumber()), "1", "clone", "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"head=" + sha, "main=" + base + " " + base, "describe=v1.0", "refs=feature main", "changes=0",
	} {
		if !strings.Contains(string(log), "\n"+want+"\n") {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}
