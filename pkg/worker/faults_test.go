package worker

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/fakegithub"
)

// This file covers the worker's credentials and the faults of issue 5 it
// meets itself: a full disk under a log and GitHub failing for a while. A
// job that crashes every worker it reaches (MaxDeliver) is left to the
// end-to-end suite, which can kill real worker processes.

const natsURLWithPassword = "nats://user:secretpass@127.0.0.1:1"

func TestNoCredentialReachesATestOrItsLogs(t *testing.T) {
	t.Parallel()
	webhookSecret := "whsec-" + uniqueDigits()
	var token string
	r := newRig(t, func(o *Options) {
		token = o.GitHub.(tokenGitHub).gh.Token()
		o.Runner.BaseEnv = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LANG=C.UTF-8",
			"GITHUB_ACCESS_TOKEN=" + token, "GITHUB_WEBHOOK_SECRET=" + webhookSecret, "NATS_URL=" + natsURLWithPassword}
		o.Runner.Secrets = []string{token}
	})
	// The test found the token and holds it in two halves, as if it had
	// read it somewhere: the worker must still mask it once joined, in one
	// write or split across two.
	half := len(token) / 2
	command := `env; echo "[config]"; cat .git/config; git -C . config --list; cat ../../source/.git/config 2>/dev/null
cat ../../../../../source/config 2>/dev/null; echo "joined:$PART1""$PART2"
printf 'split:%s' "$PART1"; sleep 0.2; printf '%s\n' "$PART2"`
	yci := testRunning(command, ", env={'PART1': '"+token[:half]+"', 'PART2': '"+token[half:]+"'}", 0)
	pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "curious"}, map[string]string{".yci.py": yci})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "d1")
	if s := r.waitFinal(t, sha, "yci/t")["yci/t"]; s.GetState() != "success" {
		t.Fatalf("yci/t: %s %q, want success", s.GetState(), s.GetDescription())
	}
	secrets := []string{token, "secretpass", webhookSecret}
	log := r.readLog(t, pr.GetNumber(), 1, "t")
	for _, secret := range secrets {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds the secret %q:\n%s", secret, log)
		}
	}
	for _, want := range []string{"PART1=", "YCI_SHA=" + sha, "[config]\n[core]", "joined:***\n", "split:***\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	for _, s := range r.gh.Statuses(owner, repoName, sha) {
		if strings.Contains(s.GetDescription()+s.GetTargetURL(), token) {
			t.Errorf("status %q shows the token", s.GetDescription())
		}
	}
	assertNoFileHolds(t, r.ws.Root(), secrets)
	r.servesNormalJob(t)
}

// assertNoFileHolds reads every regular file under root, git's objects and
// packs included, and fails for each that contains one of secrets.
func assertNoFileHolds(t *testing.T, root string, secrets []string) {
	t.Helper()
	var files int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a page being replaced: its temporary file is gone
		}
		if err != nil {
			return err
		}
		files++
		for _, secret := range secrets {
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s holds the secret %q", path, secret)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Errorf("only %d files under %s: the walk missed the mirror or the checkouts", files, root)
	}
}

func TestFullDiskUnderALogEndsTheTestAsError(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "full"}, map[string]string{".yci.py": testRunning("echo hi", "", 2)})
	sha := pr.GetHead().GetSHA()
	// A fresh pull request gets build 1; its log is made to land on a
	// device that is always full.
	b := artifacts.Build{Owner: owner, Repo: repoName, Pull: pr.GetNumber(), Number: 1}
	if _, err := r.ws.CreateTestDir(b, "t"); err != nil {
		t.Fatal(err)
	}
	logPath, err := r.ws.LogPath(b, "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", logPath); err != nil {
		t.Fatal(err)
	}
	r.publish(t, pr.GetNumber(), sha, "d1")
	s := r.waitFinal(t, sha, "yci/t")["yci/t"]
	if s.GetState() != "error" || !strings.Contains(s.GetDescription(), "writing test log") {
		t.Errorf("yci/t: %s %q, want error about the log", s.GetState(), s.GetDescription())
	}
	t.Run("description_says_the_disk_is_full", func(t *testing.T) {
		if !strings.Contains(s.GetDescription(), "no space left on device") {
			t.Errorf("description %q does not say the disk is full", s.GetDescription())
		}
	})
	for _, st := range r.gh.Statuses(owner, repoName, sha) {
		if strings.Contains(st.GetDescription(), "retrying") {
			t.Errorf("a log that cannot be written spent a retry: %q", st.GetDescription())
		}
	}
	r.servesNormalJob(t)
}

func TestStatusesGitHubFailsForAWhileArriveLate(t *testing.T) {
	t.Parallel()
	retryAfter := http.Header{"Retry-After": {"1"}}
	cases := []struct {
		name    string
		codes   []int
		headers []http.Header
		// atFinal injects the faults while the test runs, so that they
		// meet its final status rather than the first one.
		atFinal bool
	}{
		{name: "500_then_502_on_the_queued_status", codes: []int{500, 502}, headers: []http.Header{nil, nil}},
		{name: "500_then_502_on_the_final_status", codes: []int{500, 502}, headers: []http.Header{nil, nil}, atFinal: true},
		{name: "secondary_rate_limit_then_429_with_retry_after", codes: []int{403, 429}, headers: []http.Header{retryAfter, retryAfter}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "flaky-github"}, map[string]string{
				".yci.py": testRunning(`while [ ! -e ../../go ]; do sleep 0.05; done; echo ran >> ../../runs`, "", 0),
			})
			sha := pr.GetHead().GetSHA()
			fail := func() {
				for i, code := range tc.codes {
					r.gh.FailNext("POST", "/repos/"+owner+"/"+repoName+"/statuses", 1, code, tc.headers[i])
				}
			}
			if !tc.atFinal {
				fail()
			}
			r.publish(t, pr.GetNumber(), sha, "d1")
			r.waitFor(t, sha, func(m map[string]github.RepoStatus) bool {
				s := m["yci/t"]
				return strings.HasPrefix(s.GetDescription(), "running")
			})
			if tc.atFinal {
				fail()
			}
			dir, _ := r.ws.BuildDir(artifacts.Build{Owner: owner, Repo: repoName, Pull: pr.GetNumber(), Number: 1})
			if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if s := r.waitFinal(t, sha, "yci/t")["yci/t"]; s.GetState() != "success" {
				t.Fatalf("yci/t: %s %q, want success", s.GetState(), s.GetDescription())
			}
			// The projector writes a test's latest state: one that failed
			// and was overtaken before the retry is never written, and
			// none is written twice or after the final one.
			var got []string
			seen := map[string]bool{}
			for _, s := range r.gh.Statuses(owner, repoName, sha) {
				if s.GetContext() != "yci/t" {
					continue
				}
				word := strings.Fields(s.GetDescription())[0]
				if seen[word] || !slices.Contains([]string{"queued", "running", "passed"}, word) {
					t.Errorf("status %q written twice or unexpected", s.GetDescription())
				}
				seen[word] = true
				got = append(got, word)
			}
			if len(got) == 0 || got[len(got)-1] != "passed" {
				t.Errorf("statuses %q, want the last to be passed", got)
			}
			if n := r.gh.Requests().Injected; n != len(tc.codes) {
				t.Errorf("%d injected failures answered, want %d", n, len(tc.codes))
			}
			if runs, err := os.ReadFile(filepath.Join(dir, "runs")); err != nil || string(runs) != "ran\n" {
				t.Errorf("the test ran %q times (%v), want once", runs, err)
			}
			r.servesNormalJob(t)
		})
	}
}
