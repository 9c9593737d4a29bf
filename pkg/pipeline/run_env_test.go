package pipeline

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTestEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		base  []string
		facts map[string]string
		env   map[string]string
		want  []string
	}{
		{
			name: "credentials_of_the_worker_are_withheld",
			base: []string{
				"PATH=/usr/bin", "GITHUB_ACCESS_TOKEN=t", "GITHUB_USERNAME=u", "GITHUB_PASSWORD=p",
				"GITHUB_APP_PRIVATE_KEY_FILE=/k", "GITHUB_WEBHOOK_SECRET=s", "NATS_URL=nats://a:b@h",
				"NATS_CREDS=/c", "YCI_LISTEN=:8080", "GH_TOKEN=g", "GIT_CONFIG_COUNT=1",
				"GIT_CONFIG_VALUE_0=Authorization: x", "SSH_AUTH_SOCK=/s", "AWS_SECRET_ACCESS_KEY=a",
				"npm_config_password=n", "LANG=C.UTF-8",
			},
			want: []string{"PATH=/usr/bin", "LANG=C.UTF-8"},
		},
		{
			name: "keys_are_withheld_but_words_merely_containing_key_are_not",
			base: []string{"DEPLOY_KEY=d", "SIGNING_KEY=s", "KEY_FILE=/k", "KEY=k", "KEYBOARD=us", "MONKEY=1"},
			want: []string{"KEYBOARD=us", "MONKEY=1"},
		},
		{
			name:  "facts_then_env_are_added_in_name_order",
			base:  []string{"HOME=/root"},
			facts: map[string]string{"YCI_SHA": "abc", "YCI_BUILD": "3"},
			env:   map[string]string{"B": "2", "A": "1"},
			want:  []string{"HOME=/root", "YCI_BUILD=3", "YCI_SHA=abc", "A=1", "B=2"},
		},
		{
			name:  "later_values_replace_earlier_ones_in_place",
			base:  []string{"HOME=/root", "LANG=C", "HOME=/home/ci"},
			facts: map[string]string{"YCI_TEST": "fact"},
			env:   map[string]string{"LANG=": "dropped", "": "dropped", "LANG": "en", "YCI_TEST": "env"},
			want:  []string{"HOME=/home/ci", "LANG=en", "YCI_TEST=env"},
		},
		{
			name: "a_test_may_set_any_name_itself",
			base: []string{"GITHUB_TOKEN=worker"},
			env:  map[string]string{"GITHUB_TOKEN": "its-own"},
			want: []string{"GITHUB_TOKEN=its-own"},
		},
		{
			name: "entries_without_a_name_are_dropped",
			base: []string{"NOEQUALS", "=weird", "EMPTY="},
			want: []string{"EMPTY="},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, TestEnv(tt.base, tt.facts, tt.env)); diff != "" {
				t.Errorf("TestEnv (-want +got):\n%s", diff)
			}
		})
	}
}
