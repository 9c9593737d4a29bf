package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
)

func retest(tests ...string) events.Command {
	return events.Command{Kind: events.Retest, Tests: tests}
}

func TestParseCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want []events.Command
	}{
		{"bare_command", "/retest", []events.Command{retest()}},
		{"names", "/retest foo-x bar-y", []events.Command{retest("foo-x", "bar-y")}},
		{"text_around_is_ignored", "The network flaked.\n\n/retest\n\nThanks!", []events.Command{retest()}},
		{"crlf_lines", "flake\r\n/retest foo-x\r\n", []events.Command{retest("foo-x")}},
		{"retest_lines_merge_into_one", "/retest\n/retest foo-x\n/retest bar-y foo-x", []events.Command{retest("foo-x", "bar-y")}},
		{"ten_retests_are_one", strings.Repeat("/retest\n", 10), []events.Command{retest()}},
		{"retest_a_and_retest_b_are_one_of_both", "/retest a\n/retest b", []events.Command{retest("a", "b")}},
		{"ok_to_test_names_a_commit", "/ok-to-test 1A2b3c4", []events.Command{{Kind: events.OkToTest, SHA: "1a2b3c4"}}},
		{"ok_to_test_full_sha", "/ok-to-test " + strings.Repeat("ab", 20), []events.Command{{Kind: events.OkToTest, SHA: strings.Repeat("ab", 20)}}},
		{"six_digits_name_no_commit", "/ok-to-test 1a2b3c", []events.Command{{Kind: events.OkToTest}}},
		{"repeated_ok_to_test_is_one", "/ok-to-test\n/ok-to-test\n/ok-to-test 1a2b3c4\n/ok-to-test 1a2b3c4", []events.Command{{Kind: events.OkToTest}, {Kind: events.OkToTest, SHA: "1a2b3c4"}}},
		{"command_word_case_is_ignored", "/ReTest Foo-X", []events.Command{retest("Foo-X")}},
		{"up_to_three_spaces_of_indent", "   /retest", []events.Command{retest()}},
		{"tabs_and_spaces_between_names", "/retest \t foo-x   bar-y ", []events.Command{retest("foo-x", "bar-y")}},
		{"duplicate_names_are_dropped", "/retest foo-x foo-x", []events.Command{retest("foo-x")}},
		{"invalid_names_are_counted_not_carried", "/retest foo-x ../etc source *> .hidden", []events.Command{{Kind: events.Retest, Tests: []string{"foo-x"}, Invalid: 4}}},
		{"command_mid_line_is_text", "please /retest", nil},
		{"longer_word_is_not_the_command", "/retesting foo", nil},
		{"other_commands_are_not_ours", "/lgtm\n/test all\n/ok-to-testing", nil},
		{"ok_to_test", "Looks safe.\n/ok-to-test\n", []events.Command{{Kind: events.OkToTest}}},
		{"ok_to_test_ignores_words_after_it", "/OK-To-Test please ../x", []events.Command{{Kind: events.OkToTest}}},
		{"ok_to_test_and_retest", "/ok-to-test\n/retest a", []events.Command{{Kind: events.OkToTest}, retest("a")}},
		{"quoted_ok_to_test", "> /ok-to-test", nil},
		{"quoted_line", "> /retest\nno", nil},
		{"nested_quote", "> > /retest", nil},
		{"fenced_code", "```\n/retest\n```\n", nil},
		{"fenced_code_with_language", "```sh\n/retest\n```\n/retest a", []events.Command{retest("a")}},
		{"tilde_fence", "~~~\n/retest\n~~~", nil},
		{"backtick_fence_not_closed_by_tildes", "```\n~~~\n/retest\n```", nil},
		{"unclosed_fence_hides_the_rest", "```\n/retest", nil},
		{"indented_code", "text\n\n    /retest\n", nil},
		{"tab_indented_code", "\t/retest", nil},
		{"html_comment", "<!-- /retest -->\n<!--\n/retest\n-->\n/retest b", []events.Command{retest("b")}},
		{"inline_code_is_text", "`/retest`", nil},
		{"empty", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, ParseCommands(tc.body)); diff != "" {
				t.Errorf("ParseCommands(%q) (-want +got):\n%s", tc.body, diff)
			}
		})
	}
}

func TestParseCommandsBoundsWhatOneCommentAsks(t *testing.T) {
	t.Parallel()
	var body strings.Builder
	for i := range MaxCommandsPerComment + 5 {
		fmt.Fprintf(&body, "/ok-to-test %07x\n", 0x1000000+i) // distinct: none merges
	}
	if got := len(ParseCommands(body.String())); got != MaxCommandsPerComment {
		t.Errorf("%d commands read, want %d", got, MaxCommandsPerComment)
	}
	names := make([]string, MaxTestsPerCommand+3)
	for i := range names {
		names[i] = "t" + strings.Repeat("x", i)
	}
	cmds := ParseCommands("/retest " + strings.Join(names, " "))
	if len(cmds) != 1 || len(cmds[0].Tests) != MaxTestsPerCommand || cmds[0].Invalid != 3 {
		t.Errorf("got %+v, want %d names and 3 invalid", cmds, MaxTestsPerCommand)
	}
}

func commentFixture(tb testing.TB, name string) []byte {
	return fixture(tb, filepath.Join("issue_comment", name))
}

func widgetsCommand(cmds ...events.Command) events.CommandEvent {
	return events.CommandEvent{
		Version: events.Version, Repo: events.Repo{Owner: "yourci-test", Name: "widgets"}, Number: 42,
		Installation: installation, Delivery: testDelivery, CommentID: 1700000001, Author: "maintainer1",
		Commands: cmds, WrittenAt: time.Date(2025, 3, 2, 12, 30, 0, 0, time.UTC),
	}
}

func TestCommandEventFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture string
		want    events.CommandEvent
	}{
		{"retest.json", widgetsCommand(retest())},
		{"retest_names.json", widgetsCommand(retest("foo-x", "bar-y"))},
		{"edited.json", edited(widgetsCommand(retest()))},
		{"bad_names.json", widgetsCommand(events.Command{Kind: events.Retest, Tests: []string{"foo-x"}, Invalid: 2})},
	}
	for _, tc := range tests {
		t.Run(strings.TrimSuffix(tc.fixture, ".json"), func(t *testing.T) {
			t.Parallel()
			got, err := CommandEventFrom(commentFixture(t, tc.fixture), testDelivery)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCommandEventFromIgnores(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"quoted.json":   "comment holds no command",
		"on_issue.json": "not a pull request",
		"by_bot.json":   "comment by a bot",
	}
	for name, reason := range tests {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			t.Parallel()
			_, err := CommandEventFrom(commentFixture(t, name), testDelivery)
			if !errors.Is(err, ErrIgnored) || !strings.Contains(err.Error(), reason) {
				t.Errorf("CommandEventFrom = %v, want ErrIgnored naming %q", err, reason)
			}
		})
	}
}

// edited is ev as the edit of edited.json gives it: written when edited.
func edited(ev events.CommandEvent) events.CommandEvent {
	ev.WrittenAt = time.Date(2025, 3, 2, 12, 45, 0, 0, time.UTC)
	return ev
}

func TestCommandEventFromIgnoresEditsByOthers(t *testing.T) {
	t.Parallel()
	body := mutated(t, filepath.Join("issue_comment", "edited.json"), func(m map[string]any) { obj(m, "sender")["login"] = "someone-else" })
	if _, err := CommandEventFrom(body, testDelivery); !errors.Is(err, ErrIgnored) {
		t.Errorf("an edit by someone other than the author gave %v, want ErrIgnored", err)
	}
	deleted := mutated(t, filepath.Join("issue_comment", "edited.json"), func(m map[string]any) { m["action"] = "deleted" })
	if _, err := CommandEventFrom(deleted, testDelivery); !errors.Is(err, ErrIgnored) {
		t.Errorf("a deleted comment gave %v, want ErrIgnored", err)
	}
}

func TestCommandEventFromRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		change func(m map[string]any)
		field  string
	}{
		"subject_characters_in_owner": {func(m map[string]any) { obj(m, "repository", "owner")["login"] = "a.*" }, "repository.owner.login"},
		"full_name_mismatch":          {func(m map[string]any) { obj(m, "repository")["full_name"] = "other/widgets" }, "repository.full_name"},
		"zero_issue_number":           {func(m map[string]any) { obj(m, "issue")["number"] = 0 }, "issue.number"},
		"no_comment_id":               {func(m map[string]any) { delete(obj(m, "comment"), "id") }, "comment.id"},
		"author_with_slash":           {func(m map[string]any) { obj(m, "comment", "user")["login"] = "a/b" }, "comment.user.login"},
		"no_created_at":               {func(m map[string]any) { delete(obj(m, "comment"), "created_at") }, "comment.created_at"},
		"negative_installation":       {func(m map[string]any) { obj(m, "installation")["id"] = -1 }, "installation.id"},
		"number_as_string":            {func(m map[string]any) { obj(m, "issue")["number"] = "42" }, "body"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			body := mutated(t, filepath.Join("issue_comment", "retest.json"), tc.change)
			_, err := CommandEventFrom(body, testDelivery)
			var bad *BadRequestError
			if !errors.As(err, &bad) || bad.Field != tc.field {
				t.Errorf("CommandEventFrom = %v, want a bad request about %s", err, tc.field)
			}
		})
	}
	if _, err := CommandEventFrom(commentFixture(t, "retest.json"), "bad id!"); err == nil {
		t.Error("a bad delivery id was accepted")
	}
}

// commandRecorder is an in-memory CommandPublisher.
type commandRecorder struct {
	mu        sync.Mutex
	published []events.CommandEvent
	fail      error
}

func (r *commandRecorder) PublishCommand(_ context.Context, ev events.CommandEvent) error {
	if r.fail != nil {
		return r.fail
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.published = append(r.published, ev)
	return nil
}

func (r *commandRecorder) events() []events.CommandEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.CommandEvent(nil), r.published...)
}

// commandCase is one delivery to a handler that may publish commands: the
// answer it must get and the commands it must publish.
type commandCase struct {
	name     string
	req      request
	commands *commandRecorder // nil: the handler has no WithCommands
	code     int
	answer   string
	want     []events.CommandEvent
}

// runCommandCases sends each case's delivery to a fresh handler and checks
// the answer, the commands published and that no pull event was; source
// says what sent it, for the message.
func runCommandCases(t *testing.T, tests []commandCase, source string) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pulls := &recorder{}
			var opts []Option
			if tc.commands != nil {
				opts = append(opts, WithCommands(tc.commands))
			}
			w := httptest.NewRecorder()
			newTestHandler(t, pulls, opts...).ServeHTTP(w, tc.req.build())
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.answer) {
				t.Errorf("answer %d %s, want %d containing %q", w.Code, w.Body, tc.code, tc.answer)
			}
			var got []events.CommandEvent
			if tc.commands != nil {
				got = tc.commands.events()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
			if n := len(pulls.events()); n != 0 {
				t.Errorf("%s published %d pull events", source, n)
			}
		})
	}
}

func TestHandlerPublishesCommands(t *testing.T) {
	t.Parallel()
	retestBody := commentFixture(t, "retest.json")
	tests := []commandCase{
		{name: "retest_is_published_then_202", req: signed("issue_comment", retestBody), commands: &commandRecorder{},
			code: 202, answer: "queued", want: []events.CommandEvent{widgetsCommand(retest())}},
		{name: "comment_without_command_is_ignored", req: signed("issue_comment", commentFixture(t, "quoted.json")), commands: &commandRecorder{},
			code: 202, answer: "ignored: comment holds no command"},
		{name: "commands_off_ignores_comments", req: signed("issue_comment", retestBody),
			code: 202, answer: "ignored: comment commands are not enabled"},
		{name: "bad_signature_publishes_nothing", req: func() request {
			rq := signed("issue_comment", retestBody)
			rq.signature = signature("another secret", retestBody)
			return rq
		}(), commands: &commandRecorder{}, code: 401},
		{name: "queue_failure_is_503", req: signed("issue_comment", retestBody), commands: &commandRecorder{fail: errors.New("no JetStream")},
			code: 503, answer: "event queue unavailable"},
		{name: "queue_refusal_is_400", req: signed("issue_comment", retestBody), commands: &commandRecorder{fail: events.ErrInvalidEvent},
			code: 400, answer: "bad delivery: event"},
	}
	runCommandCases(t, tests, "a comment")
}

// FuzzParseCommands checks, for any comment, that what is parsed is safe
// to publish (known kinds, valid and distinct names, within the limits),
// that only a comment holding a command word can yield a command, and that
// the commands written out again parse to themselves.
func FuzzParseCommands(f *testing.F) {
	for _, seed := range []string{
		"/retest", "/retest foo-x bar-y\n/retest", "> /retest\n```\n/retest\n```", "<!--\n/retest\n-->",
		"    /retest", "/retest ../x *> source", "text /retest", "~~~\n/retest\n~~~\n/RETEST a a", "/ok-to-test x\n/retest",
		"/ok-to-test 0000000000\n/ok-to-test",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		cmds := ParseCommands(body)
		if len(cmds) > MaxCommandsPerComment {
			t.Fatalf("%d commands, over the limit", len(cmds))
		}
		if lower := strings.ToLower(body); len(cmds) > 0 && !strings.Contains(lower, "/retest") && !strings.Contains(lower, "/ok-to-test") {
			t.Fatalf("commands %+v from a comment without a command word", cmds)
		}
		var lines []string
		for _, c := range cmds {
			if _, ok := commandWords["/"+string(c.Kind)]; !ok {
				t.Fatalf("unknown kind %q", c.Kind)
			}
			if len(c.Tests) > MaxTestsPerCommand || c.Invalid < 0 {
				t.Fatalf("command %+v is over the limits", c)
			}
			seen := map[string]bool{}
			for _, name := range c.Tests {
				if err := events.ValidateTestName(name); err != nil || seen[name] {
					t.Fatalf("name %q carried: valid=%v, duplicate=%v", name, err, seen[name])
				}
				seen[name] = true
			}
			words := append([]string{"/" + string(c.Kind), c.SHA}, c.Tests...)
			lines = append(lines, strings.Join(strings.Fields(strings.Join(words, " ")), " "))
		}
		again := ParseCommands(strings.Join(lines, "\n"))
		for i := range cmds {
			cmds[i].Invalid = 0
		}
		if diff := cmp.Diff(cmds, again); diff != "" {
			t.Fatalf("commands written out parse differently (-first +again):\n%s", diff)
		}
	})
}

// BenchmarkParseCommands parses a comment of GitHub's largest size (65536
// characters) with one command at its end, the worst a receiver meets.
func BenchmarkParseCommands(b *testing.B) {
	line := "A line of discussion text, quoting `/retest` inline, nothing to run.\n"
	body := strings.Repeat(line, 65536/len(line)) + "/retest foo-x bar-y\n"
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if len(ParseCommands(body)) != 1 {
			b.Fatal("command not found")
		}
	}
}
