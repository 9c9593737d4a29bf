package events_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/yourci/yourci/pkg/events"
)

func TestRecordedCommand(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", events.MaxRecordedCommand-4) + "éééé"
	tests := []struct {
		name, cmd, want string
	}{
		{"a short command is kept whole", "./test.sh --fast", "./test.sh --fast"},
		{"a command of the limit is kept whole", strings.Repeat("b", events.MaxRecordedCommand), strings.Repeat("b", events.MaxRecordedCommand)},
		{"a long command is cut at a character and marked", long, strings.Repeat("a", events.MaxRecordedCommand-4) + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := events.RecordedCommand(tc.cmd)
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if len(got) > events.MaxRecordedCommand || (utf8.ValidString(tc.cmd) && !utf8.ValidString(got)) {
				t.Errorf("got %d bytes (valid UTF-8: %v)", len(got), utf8.ValidString(got))
			}
		})
	}
}
