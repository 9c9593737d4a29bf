package worker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/fakegithub"
)

// TestEvaluationCrossings plays .yci.py files that attack what the worker
// reads back from an evaluation: each ends as an error status on yci whose
// description and log hold no secret, and the same worker then still builds
// an ordinary pull request.
func TestEvaluationCrossings(t *testing.T) {
	t.Parallel()
	// keyFile stands for the App's private key: readable by the worker,
	// and so by an unconfined python, but not a masked value.
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	keyText := "PRIVATE-KEY-" + uniqueDigits()
	if err := os.WriteFile(keyFile, []byte(keyText), 0o600); err != nil {
		t.Fatal(err)
	}
	// plant replaces the files the worker used to read back, in the
	// evaluation's directory, with a link to target.
	plant := func(target string) string {
		return "import os, yci\nwork = os.path.dirname(os.path.dirname(yci.__file__))\n" +
			"for name in ('result.json', 'stacks.txt', 'result.json.tmp'):\n" +
			"    p = os.path.join(work, name)\n" +
			"    try:\n        os.remove(p)\n    except OSError:\n        pass\n" +
			"    os.symlink('" + target + "', p)\n"
	}
	cases := []struct {
		name string
		yci  string
		desc string // in the yci status's description
		log  string // in the config log
	}{
		{
			name: "printed_token_is_masked_in_the_config_log",
			yci: "import os\nprint('token:', os.environ.get('T', ''))\n" +
				"def test_generator(build_id, pull):\n    raise RuntimeError('leaked ' + TOKEN)\n    yield None\n",
			desc: "RuntimeError: leaked ***",
			log:  "token: ***\n",
		},
		{
			name: "timeout_with_symlinked_stacks_shows_no_key",
			yci: plant(keyFile) + plant("/proc/self/environ") +
				"def test_generator(build_id, pull):\n    while True:\n        pass\n    yield None\n",
			desc: "stopped after 3s",
			log:  "Where Python was when it was stopped",
		},
		{
			name: "exit_with_symlinked_result_shows_no_key",
			yci:  plant(keyFile) + "os._exit(0)\n",
			desc: "before reporting its tests",
			log:  "python stopped (exit status 0)",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var token string
			r := newRig(t, func(o *Options) {
				token = o.GitHub.(tokenGitHub).gh.Token()
				o.Runner.Secrets = []string{token}
				o.Evaluator.Timeout = 3 * time.Second
			})
			yci := strings.ReplaceAll(tc.yci, "TOKEN", "'"+token+"'")
			yci = strings.Replace(yci, "os.environ.get('T', '')", "'"+token+"'", 1)
			pr := r.openBranchPull(t, fakegithub.PullSpec{Head: "crossing"}, map[string]string{".yci.py": yci})
			sha := pr.GetHead().GetSHA()
			r.publish(t, pr.GetNumber(), sha, "d1")
			s := r.waitFinal(t, sha, "yci")["yci"]
			if s.GetState() != "error" || !strings.Contains(s.GetDescription(), tc.desc) {
				t.Errorf("yci: %s %q, want error with %q", s.GetState(), s.GetDescription(), tc.desc)
			}
			log := r.readLog(t, pr.GetNumber(), 1, configLogName)
			if !strings.Contains(log, tc.log) {
				t.Errorf("the config log lacks %q:\n%s", tc.log, cut(log))
			}
			for _, secret := range []string{token, keyText, "PATH="} {
				if strings.Contains(log, secret) || strings.Contains(s.GetDescription(), secret) {
					t.Errorf("the config log or status holds %q:\n%s\n%s", secret, s.GetDescription(), cut(log))
				}
			}
			r.servesNormalJob(t)
		})
	}
}
