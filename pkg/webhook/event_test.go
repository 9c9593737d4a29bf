package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/yourci/yourci/pkg/events"
)

const (
	testDelivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	head1        = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
	head2        = "3f786850e387550fdab836ed7e6dc881de23001b"
	installation = 41234567
)

// fixture returns a testdata file's bytes.
func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatalf("reading fixture: %v", err)
	}
	return b
}

// mutated returns a fixture after change edits its decoded JSON.
func mutated(tb testing.TB, name string, change func(m map[string]any)) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(tb, name), &m); err != nil {
		tb.Fatalf("decoding fixture %s: %v", name, err)
	}
	change(m)
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatalf("encoding mutated %s: %v", name, err)
	}
	return b
}

// obj walks a decoded JSON object along keys.
func obj(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m = m[k].(map[string]any)
	}
	return m
}

func widgets(number int, sha string) events.PullEvent {
	return events.PullEvent{
		Version:      events.Version,
		Repo:         events.Repo{Owner: "yourci-test", Name: "widgets"},
		Number:       number,
		HeadSHA:      sha,
		Installation: installation,
		Delivery:     testDelivery,
	}
}

func labeledBy(ev events.PullEvent, login string) events.PullEvent {
	ev.LabeledBy = login
	return ev
}

func rebuild(ev events.PullEvent) events.PullEvent {
	ev.Rebuild = true
	return ev
}

func TestPullEventFrom(t *testing.T) {
	t.Parallel()
	fork := widgets(57, "c0ffee0123456789abcdef0123456789abcdef01")
	dotted := events.PullEvent{
		Version: events.Version, Repo: events.Repo{Owner: "yourci_test", Name: "socket.io.client"},
		Number: 7, HeadSHA: head1, Delivery: testDelivery,
	}
	tests := []struct {
		name    string
		fixture string
		label   string
		want    events.PullEvent
	}{
		{"opened_builds_head", "opened.json", DefaultApprovalLabel, widgets(42, head1)},
		{"reopened_builds_head", "reopened.json", DefaultApprovalLabel, widgets(42, head1)},
		{"synchronize_builds_new_head", "synchronize.json", DefaultApprovalLabel, widgets(42, head2)},
		{"ready_for_review_builds", "ready_for_review.json", DefaultApprovalLabel, widgets(43, head1)},
		{"draft_builds", "opened_draft.json", DefaultApprovalLabel, widgets(43, head1)},
		{"edited_base_rebuilds_head", "edited_base.json", DefaultApprovalLabel, rebuild(widgets(42, head2))},
		{"approval_label_builds_naming_who_labeled", "labeled_ok_to_test.json", DefaultApprovalLabel, labeledBy(widgets(42, head2), "maintainer-jane")},
		{"approval_label_compares_case_insensitively", "labeled_ok_to_test.json", "OK-To-Test", labeledBy(widgets(42, head2), "maintainer-jane")},
		{"fork_builds_from_base_repository", "opened_fork.json", DefaultApprovalLabel, fork},
		{"dotted_names_without_installation_build", "opened_dotted_names.json", DefaultApprovalLabel, dotted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := PullEventFrom(fixture(t, tt.fixture), testDelivery, tt.label)
			if err != nil {
				t.Fatalf("PullEventFrom: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(events.PullEvent{}, "Pull", "PullUpdatedAt")); diff != "" {
				t.Errorf("event mismatch (-want +got):\n%s", diff)
			}
			wantPull, wantAt := deliveredPull(t, fixture(t, tt.fixture))
			if !bytes.Equal(got.Pull, wantPull) {
				t.Errorf("carried pull request is not the delivered one byte for byte:\n%s", got.Pull)
			}
			if !got.PullUpdatedAt.Equal(wantAt) || wantAt.IsZero() {
				t.Errorf("PullUpdatedAt = %v, want the delivery's %v", got.PullUpdatedAt, wantAt)
			}
		})
	}
}

// deliveredPull is a delivery's pull_request object as its bytes stand in
// the body, and its updated_at.
func deliveredPull(tb testing.TB, body []byte) (json.RawMessage, time.Time) {
	tb.Helper()
	var d struct {
		PullRequest json.RawMessage `json:"pull_request"`
	}
	var p struct {
		UpdatedAt time.Time `json:"updated_at"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(d.PullRequest, &p); err != nil {
		tb.Fatal(err)
	}
	return d.PullRequest, p.UpdatedAt
}

func TestPullEventFromLeavesAnOversizedPullToTheAPI(t *testing.T) {
	t.Parallel()
	body := mutated(t, "synchronize.json", func(m map[string]any) {
		obj(m, "pull_request")["body"] = strings.Repeat("x", events.MaxPullLen)
	})
	ev, err := PullEventFrom(body, testDelivery, DefaultApprovalLabel)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Pull != nil {
		t.Errorf("carried a pull request of %d bytes, over MaxPullLen", len(ev.Pull))
	}
	if ev.PullUpdatedAt.IsZero() {
		t.Error("an oversized pull request lost its updated_at, which orders head records")
	}
}

func TestPullEventFromIgnores(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, fixture, label, reason string
	}{
		{"closed", "closed.json", DefaultApprovalLabel, `action "closed"`},
		{"edited_title_only", "edited_title.json", DefaultApprovalLabel, "without a base branch change"},
		{"other_label", "labeled_bug.json", DefaultApprovalLabel, `label "bug"`},
		{"approval_label_when_trigger_disabled", "labeled_ok_to_test.json", "", `label "ok-to-test"`},
		{"approval_label_when_another_is_configured", "labeled_ok_to_test.json", "safe-to-test", `label "ok-to-test"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := PullEventFrom(fixture(t, tt.fixture), testDelivery, tt.label)
			if !errors.Is(err, ErrIgnored) {
				t.Fatalf("PullEventFrom error = %v, want ErrIgnored", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not give the reason %q", err, tt.reason)
			}
		})
	}
}

func TestPullEventFromRefusesBadInput(t *testing.T) {
	t.Parallel()
	set := func(value any, keys ...string) func(map[string]any) {
		return func(m map[string]any) { obj(m, keys[:len(keys)-1]...)[keys[len(keys)-1]] = value }
	}
	tests := []struct {
		name     string
		body     func(testing.TB) []byte
		delivery string
		field    string
	}{
		{"malformed_json", func(testing.TB) []byte { return []byte(`{"action": "opened",`) }, testDelivery, "body"},
		{"truncated_fixture", func(tb testing.TB) []byte { return fixture(tb, "opened.json")[:5000] }, testDelivery, "body"},
		{"number_as_string", func(tb testing.TB) []byte { return mutated(tb, "opened.json", set("42", "number")) }, testDelivery, "body"},
		{"number_zero", func(tb testing.TB) []byte {
			return mutated(tb, "opened.json", func(m map[string]any) { m["number"] = 0; obj(m, "pull_request")["number"] = 0 })
		}, testDelivery, "number"},
		{"number_disagrees", func(tb testing.TB) []byte { return mutated(tb, "opened.json", set(41, "pull_request", "number")) }, testDelivery, "pull_request.number"},
		{"short_sha", func(tb testing.TB) []byte {
			return mutated(tb, "opened.json", set("6dcb09b", "pull_request", "head", "sha"))
		}, testDelivery, "pull_request.head.sha"},
		{"upper_case_sha", func(tb testing.TB) []byte {
			return mutated(tb, "opened.json", set(strings.ToUpper(head1), "pull_request", "head", "sha"))
		}, testDelivery, "pull_request.head.sha"},
		{"sha_is_an_option", func(tb testing.TB) []byte {
			return mutated(tb, "opened.json", set("--upload-pack=touch /tmp/x", "pull_request", "head", "sha"))
		}, testDelivery, "pull_request.head.sha"},
		{"empty_owner", func(tb testing.TB) []byte { return mutated(tb, "opened.json", set("", "repository", "owner", "login")) }, testDelivery, "repository.owner.login"},
		{"owner_with_space", func(tb testing.TB) []byte {
			return mutated(tb, "opened.json", set("your ci", "repository", "owner", "login"))
		}, testDelivery, "repository.owner.login"},
		{"owner_with_star", func(tb testing.TB) []byte {
			return mutated(tb, "opened.json", set("your*", "repository", "owner", "login"))
		}, testDelivery, "repository.owner.login"},
		{"owner_with_dot_which_github_never_allows", func(tb testing.TB) []byte {
			return mutated(tb, "opened.json", set("my.org", "repository", "owner", "login"))
		}, testDelivery, "repository.owner.login"},
		{"labeled_without_sender", func(tb testing.TB) []byte {
			return mutated(tb, "labeled_ok_to_test.json", func(m map[string]any) { delete(m, "sender") })
		}, testDelivery, "sender.login"},
		{"owner_starting_with_dash", func(tb testing.TB) []byte {
			return mutated(tb, "opened.json", set("-x", "repository", "owner", "login"))
		}, testDelivery, "repository.owner.login"},
		{"repo_with_gt", func(tb testing.TB) []byte { return mutated(tb, "opened.json", set("wid>gets", "repository", "name")) }, testDelivery, "repository.name"},
		{"repo_is_dotdot", func(tb testing.TB) []byte { return mutated(tb, "opened.json", set("..", "repository", "name")) }, testDelivery, "repository.name"},
		{"repo_with_slash", func(tb testing.TB) []byte { return mutated(tb, "opened.json", set("a/b", "repository", "name")) }, testDelivery, "repository.name"},
		{"huge_repo_name", func(tb testing.TB) []byte {
			return mutated(tb, "opened.json", set(strings.Repeat("a", 1<<20), "repository", "name"))
		}, testDelivery, "repository.name"},
		{"full_name_disagrees", func(tb testing.TB) []byte {
			return mutated(tb, "opened.json", set("someone/else", "repository", "full_name"))
		}, testDelivery, "repository.full_name"},
		{"negative_installation", func(tb testing.TB) []byte { return mutated(tb, "opened.json", set(-1, "installation", "id")) }, testDelivery, "installation.id"},
		{"missing_delivery", func(tb testing.TB) []byte { return fixture(tb, "opened.json") }, "", "X-GitHub-Delivery"},
		{"delivery_with_newline", func(tb testing.TB) []byte { return fixture(tb, "opened.json") }, "abc\r\nNats-Msg-Id: x", "X-GitHub-Delivery"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := PullEventFrom(tt.body(t), tt.delivery, DefaultApprovalLabel)
			var bad *BadRequestError
			if !errors.As(err, &bad) {
				t.Fatalf("PullEventFrom = %+v, %v; want a *BadRequestError", ev, err)
			}
			if bad.Field != tt.field {
				t.Errorf("refused field %q (%v), want %q", bad.Field, bad, tt.field)
			}
		})
	}
}

func TestPullEventFromAcceptsRealOwners(t *testing.T) {
	t.Parallel()
	// my_org: Enterprise Managed Users' logins end in _<shortcode>, and
	// the workspace and the queue accept what the receiver accepts.
	for _, owner := range []string{"my_org", "octocat_acme", "a", "x-1", strings.Repeat("o", events.MaxOwnerLen)} {
		t.Run(owner, func(t *testing.T) {
			t.Parallel()
			body := mutated(t, "opened.json", func(m map[string]any) {
				obj(m, "repository", "owner")["login"] = owner
				delete(obj(m, "repository"), "full_name")
			})
			ev, err := PullEventFrom(body, testDelivery, DefaultApprovalLabel)
			if err != nil {
				t.Fatalf("PullEventFrom: %v", err)
			}
			if ev.Repo.Owner != owner {
				t.Errorf("owner %q, want %q", ev.Repo.Owner, owner)
			}
		})
	}
}

func TestPullEventFromAcceptsRealNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{".github", "socket.io", "a", "under_score", "x-y.z", strings.Repeat("r", events.MaxRepoLen)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			body := mutated(t, "opened.json", func(m map[string]any) {
				obj(m, "repository")["name"] = name
				delete(obj(m, "repository"), "full_name")
			})
			ev, err := PullEventFrom(body, testDelivery, DefaultApprovalLabel)
			if err != nil {
				t.Fatalf("PullEventFrom: %v", err)
			}
			if ev.Repo.Name != name {
				t.Errorf("repository name %q, want %q", ev.Repo.Name, name)
			}
		})
	}
}
