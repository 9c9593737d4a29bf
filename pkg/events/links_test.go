package events_test

import (
	"testing"

	"github.com/yourci/yourci/pkg/events"
)

func TestBuildRecordLinks(t *testing.T) {
	t.Parallel()
	const sha = "0123456789abcdef0123456789abcdef01234567"
	cases := []struct {
		name, pullURL, sha   string
		wantPull, wantCommit string
	}{
		{"github", "https://github.com/acme/widget/pull/7", sha,
			"https://github.com/acme/widget/pull/7", "https://github.com/acme/widget/commit/" + sha},
		{"enterprise_below_a_path", "http://ghe.example:8443/git/acme/widget/pull/7", sha,
			"http://ghe.example:8443/git/acme/widget/pull/7", "http://ghe.example:8443/git/acme/widget/commit/" + sha},
		{"older_record_has_none", "", sha, "", ""},
		{"javascript_is_not_linked", "javascript:alert(1)//pull/7", sha, "", ""},
		{"data_is_not_linked", "data:text/html,<script>alert(1)</script>", sha, "", ""},
		{"relative_is_not_linked", "/acme/widget/pull/7", sha, "", ""},
		{"no_host_is_not_linked", "https:///acme/widget/pull/7", sha, "", ""},
		{"user_info_is_not_linked", "https://evil@github.com/acme/widget/pull/7", sha, "", ""},
		{"another_pull_links_no_commit", "https://github.com/acme/widget/pull/8", sha, "https://github.com/acme/widget/pull/8", ""},
		{"not_a_commit_id_links_no_commit", "https://github.com/acme/widget/pull/7", "HEAD", "https://github.com/acme/widget/pull/7", ""},
		{"query_and_fragment_dropped_from_commit", "https://github.com/acme/widget/pull/7?x=1#y", sha,
			"https://github.com/acme/widget/pull/7?x=1#y", "https://github.com/acme/widget/commit/" + sha},
		{"quotes_stay_escaped", `https://github.com/a"b/w/pull/7`, sha,
			"https://github.com/a%22b/w/pull/7", "https://github.com/a%22b/w/commit/" + sha},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := events.BuildRecord{Key: events.BuildKey{Repo: events.Repo{Owner: "acme", Name: "widget"}, Pull: 7, Build: 1},
				SHA: tc.sha, PullURL: tc.pullURL}
			if got := rec.PullLink(); got != tc.wantPull {
				t.Errorf("PullLink() = %q, want %q", got, tc.wantPull)
			}
			if got := rec.CommitLink(); got != tc.wantCommit {
				t.Errorf("CommitLink() = %q, want %q", got, tc.wantCommit)
			}
		})
	}
}
