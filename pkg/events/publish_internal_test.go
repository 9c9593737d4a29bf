package events

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPullEventEncode attacks the hand-made encoding of a pull event: what
// a worker decodes must be the event published, whatever the carried pull
// request holds.
func TestPullEventEncode(t *testing.T) {
	t.Parallel()
	base := PullEvent{Version: Version, Repo: Repo{Owner: "acme", Name: "widgets"}, Number: 7,
		HeadSHA: "0123456789abcdef0123456789abcdef01234567", Installation: 3, Delivery: "d-1",
		Rebuild: true, LabeledBy: "jane", PullUpdatedAt: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	with := func(pull string) PullEvent {
		ev := base
		ev.Pull = json.RawMessage(pull)
		return ev
	}
	tests := []struct {
		name string
		ev   PullEvent
		want json.RawMessage // the Pull decoded, when not ev.Pull
	}{
		{name: "without_pull", ev: base},
		{name: "with_pull", ev: with(`{"number":7,"head":{"sha":"0123456789abcdef0123456789abcdef01234567"}}`)},
		{name: "pull_naming_the_event_fields", ev: with(`{"v":99,"pull":{"head_sha":"x"},"number":8}`)},
		{name: "pull_with_escapes_and_unicode", ev: with(`{"body":"a \"quote\" \\ </script> \u2028 é"}`)},
		{name: "pull_with_whitespace_is_compacted", ev: with(" {\n  \"a\" : [ 1, \"x y\" ]\r\n}"),
			want: json.RawMessage(`{"a":[1,"x y"]}`)},
		{name: "minimal_event_with_pull", ev: PullEvent{Version: Version, Pull: json.RawMessage(`{}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data, err := tt.ev.encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !json.Valid(data) {
				t.Fatalf("encoded event is not JSON: %s", data)
			}
			got, err := decode[PullEvent](data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want := tt.ev
			if tt.want != nil {
				want.Pull = tt.want
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decoded event differs (-published +decoded):\n%s", diff)
			}
		})
	}
}

func TestPullEventValidateRefusesAPullThatIsNoObject(t *testing.T) {
	t.Parallel()
	for _, pull := range []string{`[1]`, `"x"`, `null`, `{"a":1`, ` {}`} {
		t.Run(pull, func(t *testing.T) {
			t.Parallel()
			ev := PullEvent{Repo: Repo{Owner: "acme", Name: "widgets"}, Number: 7,
				HeadSHA: "0123456789abcdef0123456789abcdef01234567", Pull: json.RawMessage(pull)}
			if err := ev.validate(); !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("validate = %v, want ErrInvalidEvent", err)
			}
		})
	}
}
