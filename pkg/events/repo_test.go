package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/events"
)

func TestRepoValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		repo  events.Repo
		valid bool
	}{
		{"plain", events.Repo{Owner: "acme", Name: "widgets"}, true},
		{"hyphens_and_digits", events.Repo{Owner: "acme-2", Name: "w-1"}, true},
		{"underscore_owner_as_enterprise_managed_users_have", events.Repo{Owner: "my_org", Name: "widgets"}, true},
		{"dotted_repository", events.Repo{Owner: "acme", Name: "socket.io.client"}, true},
		{"dot_github_repository", events.Repo{Owner: "acme", Name: ".github"}, true},
		{"underscore_repository", events.Repo{Owner: "acme", Name: "_private"}, true},
		{"longest_owner", events.Repo{Owner: strings.Repeat("a", events.MaxOwnerLen), Name: "w"}, true},
		{"longest_repository", events.Repo{Owner: "a", Name: strings.Repeat("w", events.MaxRepoLen)}, true},
		{"empty_owner", events.Repo{Name: "w"}, false},
		{"empty_repository", events.Repo{Owner: "acme"}, false},
		{"dotted_owner", events.Repo{Owner: "my.org", Name: "w"}, false},
		{"owner_starting_with_hyphen", events.Repo{Owner: "-acme", Name: "w"}, false},
		{"owner_starting_with_underscore", events.Repo{Owner: "_acme", Name: "w"}, false},
		{"repository_starting_with_hyphen", events.Repo{Owner: "acme", Name: "--upload-pack=x"}, false},
		{"repository_dot", events.Repo{Owner: "acme", Name: "."}, false},
		{"repository_dotdot", events.Repo{Owner: "acme", Name: ".."}, false},
		{"slash", events.Repo{Owner: "acme", Name: "a/b"}, false},
		{"space", events.Repo{Owner: "acme", Name: "a b"}, false},
		{"nats_wildcard", events.Repo{Owner: "acme", Name: ">"}, false},
		{"non_ascii", events.Repo{Owner: "acmé", Name: "w"}, false},
		{"owner_too_long", events.Repo{Owner: strings.Repeat("a", events.MaxOwnerLen+1), Name: "w"}, false},
		{"repository_too_long", events.Repo{Owner: "a", Name: strings.Repeat("w", events.MaxRepoLen+1)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.repo.Validate()
			if tt.valid && err != nil {
				t.Errorf("Validate(%q) = %v, want nil", tt.repo.FullName(), err)
			}
			if !tt.valid && !errors.Is(err, events.ErrInvalidEvent) {
				t.Errorf("Validate(%q) = %v, want ErrInvalidEvent", tt.repo.FullName(), err)
			}
		})
	}
}

func TestValidatePullAndSHA(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1} {
		if err := events.ValidatePull(n); !errors.Is(err, events.ErrInvalidEvent) {
			t.Errorf("ValidatePull(%d) = %v, want ErrInvalidEvent", n, err)
		}
	}
	if err := events.ValidatePull(1); err != nil {
		t.Errorf("ValidatePull(1) = %v", err)
	}
	good := []string{strings.Repeat("a", 40), strings.Repeat("0", 64)}
	bad := []string{"", "abc1234", strings.Repeat("A", 40), strings.Repeat("g", 40), strings.Repeat("a", 41)}
	for _, sha := range good {
		if err := events.ValidateSHA(sha); err != nil {
			t.Errorf("ValidateSHA(%q) = %v", sha, err)
		}
	}
	for _, sha := range bad {
		if err := events.ValidateSHA(sha); !errors.Is(err, events.ErrInvalidEvent) {
			t.Errorf("ValidateSHA(%q) = %v, want ErrInvalidEvent", sha, err)
		}
	}
}

func TestIsApprovalLabel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		label, want string
		is          bool
	}{
		{"ok-to-test", "ok-to-test", true},
		{"OK-To-Test", "ok-to-test", true},
		{"ok-to-test", "OK-TO-TEST", true},
		{"ok-to-merge", "ok-to-test", false},
		{"ok-to-test", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.label+"_vs_"+tt.want, func(t *testing.T) {
			t.Parallel()
			if got := events.IsApprovalLabel(tt.label, tt.want); got != tt.is {
				t.Errorf("IsApprovalLabel(%q, %q) = %v, want %v", tt.label, tt.want, got, tt.is)
			}
		})
	}
}
