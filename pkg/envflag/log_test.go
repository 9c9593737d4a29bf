package envflag

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestNewLoggerWritesDurationsAsStrings(t *testing.T) {
	for _, tt := range []struct {
		name string
		json bool
		want string
	}{
		{"json", true, "1.5s"},
		{"text", false, "took=1.5s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			NewLogger(tt.json, &b).Info("done", "took", 1500*time.Millisecond)
			if !tt.json {
				if !strings.Contains(b.String(), tt.want) {
					t.Errorf("line %q lacks %q", b.String(), tt.want)
				}
				return
			}
			var line map[string]any
			if err := json.Unmarshal([]byte(b.String()), &line); err != nil {
				t.Fatal(err)
			}
			if line["took"] != tt.want {
				t.Errorf("took = %#v, want %q", line["took"], tt.want)
			}
		})
	}
}
