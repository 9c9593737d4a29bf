package status_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/status"
	"github.com/yourci/yourci/pkg/status/statustest"
)

func TestReporterSendsWhatGitHubExpects(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("ünïcødé ", 30)
	tests := []struct {
		name     string
		status   status.Status
		opts     []status.Option
		wantPath string
		want     github.RepoStatus
	}{
		{
			name:     "a test's status carries its context, state, description and log link",
			status:   sample(),
			wantPath: "/repos/octo/hello.world/statuses/0123456789abcdef0123456789abcdef01234567",
			want: github.RepoStatus{
				State: github.Ptr("pending"), Context: github.Ptr("yci/foo-x"), Description: github.Ptr("queued"),
				TargetURL: github.Ptr("https://ci.example.com/octo/hello.world/pulls/7/1/foo-x/out.txt"),
			},
		},
		{
			name: "a build-wide status has the bare yci context and may have no link",
			status: status.Status{Owner: "o", Repo: "r", SHA: "abc", State: status.Error,
				Description: status.ConfigError("line 7: positional argument follows keyword argument")},
			wantPath: "/repos/o/r/statuses/abc",
			want: github.RepoStatus{
				State: github.Ptr("error"), Context: github.Ptr("yci"),
				Description: github.Ptr(".yci.py: line 7: positional argument follows keyword argument"),
			},
		},
		{
			name: "secrets are masked in the description and the link",
			status: status.Status{Owner: "o", Repo: "r", SHA: "abc", Test: "t", State: status.Failure,
				Description: "git said: https://x-access-token:ghs_SECRET123@github.com denied",
				TargetURL:   "https://ci.example.com/logs?token=ghs_SECRET123"},
			opts:     []status.Option{status.WithSecrets("", "ghs_SECRET"), status.WithSecretsFrom(func() []string { return []string{"ghs_SECRET123"} })},
			wantPath: "/repos/o/r/statuses/abc",
			want: github.RepoStatus{
				State: github.Ptr("failure"), Context: github.Ptr("yci/t"),
				Description: github.Ptr("git said: https://x-access-token:***@github.com denied"),
				TargetURL:   github.Ptr("https://ci.example.com/logs?token=***"),
			},
		},
		{
			name: "a long multi-line description becomes one line of 140 characters",
			status: status.Status{Owner: "o", Repo: "r", SHA: "abc", Test: "t", State: status.Error,
				Description: "Traceback:\n  " + long},
			wantPath: "/repos/o/r/statuses/abc",
			want: github.RepoStatus{
				State: github.Ptr("error"), Context: github.Ptr("yci/t"),
				Description: github.Ptr(strings.TrimSpace(string([]rune("Traceback: " + long)[:139])) + "…"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newStatusServer(t)
			r := newReporter(t, client(t, srv, false).Repositories, tc.opts...)
			if err := r.Set(t.Context(), tc.status); err != nil {
				t.Fatalf("Set() = %v", err)
			}
			if diff := cmp.Diff(tc.want, srv.last()); diff != "" {
				t.Errorf("GitHub received (-want +got):\n%s", diff)
			}
			if got := srv.paths[0]; got != tc.wantPath {
				t.Errorf("path = %q, want %q", got, tc.wantPath)
			}
			if got := srv.last(); utf8.RuneCountInString(got.GetDescription()) > status.MaxDescription {
				n := utf8.RuneCountInString(got.GetDescription())
				t.Errorf("description has %d characters, over %d", n, status.MaxDescription)
			}
		})
	}
}

func TestReporterNeverSendsAnIncompleteStatus(t *testing.T) {
	t.Parallel()
	broken := map[string]func(*status.Status){
		"no owner":      func(s *status.Status) { s.Owner = "" },
		"no repo":       func(s *status.Status) { s.Repo = "" },
		"no sha":        func(s *status.Status) { s.SHA = "" },
		"unknown state": func(s *status.Status) { s.State = "done" },
	}
	for name, breakIt := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := &statustest.Fake{}
			r, _ := statustest.NewReporter(fake, status.WithLogger(testLogger(t)))
			s := sample()
			breakIt(&s)
			if err := r.Set(t.Context(), s); !errors.Is(err, status.ErrInvalid) {
				t.Errorf("Set() = %v, want ErrInvalid", err)
			}
			if calls := fake.Calls(); len(calls) != 0 {
				t.Errorf("GitHub was called %d times", len(calls))
			}
		})
	}
}
