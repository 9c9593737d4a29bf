package webhook

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
)

var (
	checkRunFixture   = filepath.Join("check_run", "rerequested.json")
	checkSuiteFixture = filepath.Join("check_suite", "rerequested.json")
)

// pressed is the event of a press on the fixtures' check run (or suite).
func pressed(suite bool, tests ...string) events.CommandEvent {
	ev := events.CommandEvent{
		Version: events.Version, Repo: events.Repo{Owner: "yourci-test", Name: "widgets"}, Number: 42,
		Installation: installation, Delivery: testDelivery, Author: "maintainer1",
		Button:   &events.Button{CheckRun: 21000000077, SHA: head1, Build: 3},
		Commands: []events.Command{{Kind: events.RerunCheck, Tests: tests}},
	}
	if suite {
		ev.Button = &events.Button{CheckSuite: 5200000011, SHA: head1}
		ev.Commands = []events.Command{{Kind: events.RerunSuite}}
	}
	return ev
}

func TestCheckEventFrom(t *testing.T) {
	t.Parallel()
	summary := "yci:1:yourci-test/widgets:42:" + head1 + ":3:"
	tests := []struct {
		name   string
		suite  bool
		change func(m map[string]any)
		want   events.CommandEvent
	}{
		{name: "rerun_of_one_check", want: pressed(false, "foo-x")},
		{name: "rerun_of_a_rerun_check_names_its_build", change: func(m map[string]any) {
			obj(m, "check_run")["external_id"] = "yci:1:yourci-test/widgets:42:" + head1 + ":3.2:foo-x"
		}, want: pressed(false, "foo-x")},
		{name: "rerun_of_the_build_wide_check_names_no_test", change: func(m map[string]any) {
			obj(m, "check_run")["external_id"] = summary
			obj(m, "check_run")["name"] = "yci"
		}, want: pressed(false)},
		{name: "rerun_of_the_suite", suite: true, want: pressed(true)},
		{name: "suite_of_a_fork_names_no_pull", suite: true, change: func(m map[string]any) {
			obj(m, "check_suite")["pull_requests"] = []any{}
		}, want: func() events.CommandEvent { ev := pressed(true); ev.Number = 0; return ev }()},
		{name: "suite_of_an_older_head_names_no_pull", suite: true, change: func(m map[string]any) {
			obj(m, "check_suite")["head_sha"] = head2
		}, want: func() events.CommandEvent {
			ev := pressed(true)
			ev.Number, ev.Button.SHA = 0, head2
			return ev
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeCheck(t, tc.suite, tc.change)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}

// decodeCheck decodes the check_run (or check_suite) fixture after change.
func decodeCheck(t *testing.T, suite bool, change func(map[string]any)) (events.CommandEvent, error) {
	t.Helper()
	if change == nil {
		change = func(map[string]any) {}
	}
	if suite {
		return CheckSuiteEventFrom(mutated(t, checkSuiteFixture, change), testDelivery)
	}
	return CheckRunEventFrom(mutated(t, checkRunFixture, change), testDelivery)
}

func TestCheckEventFromIgnores(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		suite  bool
		change func(m map[string]any)
		reason string
	}{
		{"created", false, func(m map[string]any) { m["action"] = "created" }, `check_run action "created"`},
		{"completed", false, func(m map[string]any) { m["action"] = "completed" }, `check_run action "completed"`},
		{"requested_action", false, func(m map[string]any) { m["action"] = "requested_action" }, `action "requested_action"`},
		{"another_apps_run", false, func(m map[string]any) { obj(m, "check_run")["external_id"] = "build-77" }, "check run of another App"},
		{"no_external_id", false, func(m map[string]any) { obj(m, "check_run")["external_id"] = nil }, "check run of another App"},
		{"unreadable_external_id", false, func(m map[string]any) { obj(m, "check_run")["external_id"] = "yci:1:yourci-test/widgets:x" }, "cannot read"},
		{"summary_of_no_build", false, func(m map[string]any) {
			obj(m, "check_run")["external_id"] = "yci:1:yourci-test/widgets:0:" + head1 + ":0:"
		}, "cannot read"},
		{"renamed_repository", false, func(m map[string]any) {
			obj(m, "check_run")["external_id"] = "yci:1:yourci-test/old-widgets:42:" + head1 + ":3:foo-x"
		}, "belongs to repository yourci-test/old-widgets"},
		{"suite_requested_on_a_push", true, func(m map[string]any) { m["action"] = "requested" }, `check_suite action "requested"`},
		{"suite_completed", true, func(m map[string]any) { m["action"] = "completed" }, `check_suite action "completed"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := decodeCheck(t, tc.suite, tc.change)
			if !errors.Is(err, ErrIgnored) || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("got %v, want ErrIgnored naming %q", err, tc.reason)
			}
			if ev.Button != nil {
				t.Errorf("an ignored delivery gave an event: %+v", ev)
			}
		})
	}
}

func TestCheckEventFromRefusesBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		suite  bool
		change func(m map[string]any)
		field  string
	}{
		{"sha_differs_from_external_id", false, func(m map[string]any) { obj(m, "check_run")["head_sha"] = head2 }, "check_run.external_id"},
		{"name_differs_from_external_id", false, func(m map[string]any) { obj(m, "check_run")["name"] = "yci/bar-y" }, "check_run.name"},
		{"test_that_cannot_be_a_name", false, func(m map[string]any) {
			obj(m, "check_run")["external_id"] = "yci:1:yourci-test/widgets:42:" + head1 + ":3:../x"
			obj(m, "check_run")["name"] = "yci/../x"
		}, "check_run.external_id"},
		{"sha_not_hex", false, func(m map[string]any) {
			obj(m, "check_run")["external_id"] = "yci:1:yourci-test/widgets:42:HEAD:3:foo-x"
			obj(m, "check_run")["head_sha"] = "HEAD"
		}, "head_sha"},
		{"no_run_id", false, func(m map[string]any) { delete(obj(m, "check_run"), "id") }, "check_run.id"},
		{"sender_with_slash", false, func(m map[string]any) { obj(m, "sender")["login"] = "a/b" }, "sender.login"},
		{"owner_with_subject_characters", false, func(m map[string]any) {
			obj(m, "repository", "owner")["login"] = "a.*"
			obj(m, "check_run")["external_id"] = "yci:1:a.*/widgets:42:" + head1 + ":3:foo-x"
		}, "repository.owner.login"},
		{"negative_installation", false, func(m map[string]any) { obj(m, "installation")["id"] = -1 }, "installation.id"},
		{"run_id_as_string", false, func(m map[string]any) { obj(m, "check_run")["id"] = "77" }, "body"},
		{"suite_without_id", true, func(m map[string]any) { delete(obj(m, "check_suite"), "id") }, "check_suite.id"},
		{"suite_sha_not_hex", true, func(m map[string]any) { obj(m, "check_suite")["head_sha"] = "main" }, "head_sha"},
		{"suite_full_name_mismatch", true, func(m map[string]any) { obj(m, "repository")["full_name"] = "x/y" }, "repository.full_name"},
		{"suite_without_sender", true, func(m map[string]any) { delete(m, "sender") }, "sender.login"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := decodeCheck(t, tc.suite, tc.change)
			var bad *BadRequestError
			if !errors.As(err, &bad) || bad.Field != tc.field {
				t.Errorf("got %v, want a bad request about %s", err, tc.field)
			}
		})
	}
	if _, err := CheckRunEventFrom(fixture(t, checkRunFixture), "bad id!"); err == nil {
		t.Error("a bad delivery id was accepted")
	}
}

func TestHandlerPublishesButtonPresses(t *testing.T) {
	t.Parallel()
	runBody, suiteBody := fixture(t, checkRunFixture), fixture(t, checkSuiteFixture)
	other := mutated(t, checkRunFixture, func(m map[string]any) { obj(m, "check_run")["external_id"] = "job-9" })
	tests := []commandCase{
		{name: "rerun_is_published_then_202", req: signed("check_run", runBody), commands: &commandRecorder{},
			code: 202, answer: "queued", want: []events.CommandEvent{pressed(false, "foo-x")}},
		{name: "suite_rerun_is_published_then_202", req: signed("check_suite", suiteBody), commands: &commandRecorder{},
			code: 202, answer: "queued", want: []events.CommandEvent{pressed(true)}},
		{name: "another_apps_run_is_ignored", req: signed("check_run", other), commands: &commandRecorder{},
			code: 202, answer: "ignored: check run of another App"},
		{name: "buttons_off_ignore_presses", req: signed("check_run", runBody),
			code: 202, answer: "ignored: re-run buttons are not enabled"},
		{name: "bad_signature_publishes_nothing", req: func() request {
			rq := signed("check_suite", suiteBody)
			rq.signature = signature("another secret", suiteBody)
			return rq
		}(), commands: &commandRecorder{}, code: 401},
		{name: "queue_failure_is_503", req: signed("check_run", runBody), commands: &commandRecorder{fail: errors.New("no JetStream")},
			code: 503, answer: "event queue unavailable"},
	}
	runCommandCases(t, tests, "a button press")
}

// FuzzCheckEventFrom checks that whatever a check_run or check_suite body
// holds, the decoders either ignore it, refuse it as a bad request, or
// give an event the queue accepts: a known button kind, a commit id, and
// test names that are valid.
func FuzzCheckEventFrom(f *testing.F) {
	for _, name := range []string{checkRunFixture, checkSuiteFixture} {
		f.Add(fixture(f, name), strings.HasPrefix(name, "check_suite"))
	}
	f.Add([]byte(`{"action":"rerequested","check_run":{"id":1,"name":"yci/a","head_sha":"`+head1+`","external_id":"yci:1:o/r:1:`+head1+`:1:a"},"repository":{"name":"r","owner":{"login":"o"}},"sender":{"login":"u"}}`), false)
	f.Add([]byte(`{"action":"rerequested","check_suite":{"id":1,"head_sha":"`+head1+`","pull_requests":[{"number":2,"head":{"sha":"`+head1+`"}}]},"repository":{"name":"r","owner":{"login":"o"}},"sender":{"login":"u"}}`), true)
	f.Fuzz(func(t *testing.T, body []byte, suite bool) {
		decode := CheckRunEventFrom
		if suite {
			decode = CheckSuiteEventFrom
		}
		ev, err := decode(body, testDelivery)
		if err != nil {
			var bad *BadRequestError
			if !errors.Is(err, ErrIgnored) && !errors.As(err, &bad) {
				t.Fatalf("error %v is neither ignored nor a bad request", err)
			}
			return
		}
		want := events.RerunCheck
		if suite {
			want = events.RerunSuite
		}
		if len(ev.Commands) != 1 || ev.Commands[0].Kind != want || ev.Author == "" || ev.Number < 0 || (!suite && ev.Number < 1) {
			t.Fatalf("event %+v", ev)
		}
		for _, name := range ev.Commands[0].Tests {
			if err := events.ValidateTestName(name); err != nil {
				t.Fatalf("test name %q carried: %v", name, err)
			}
		}
		// The repository, commit and delivery follow a pull event's rules.
		checkEvent(t, events.PullEvent{Version: ev.Version, Repo: ev.Repo, Number: max(ev.Number, 1),
			HeadSHA: ev.Button.SHA, Installation: ev.Installation, Delivery: ev.Delivery})
	})
}

// BenchmarkCheckRunEventFrom decodes a full check_run rerequested
// delivery, as GitHub sends it, into its command event.
func BenchmarkCheckRunEventFrom(b *testing.B) {
	body := fixture(b, checkRunFixture)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CheckRunEventFrom(body, testDelivery); err != nil {
			b.Fatal(err)
		}
	}
}
