package envflag

import (
	"encoding/json"
	"log/slog"
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
			NewLogger(tt.json, slog.LevelInfo, &b).Info("done", "took", 1500*time.Millisecond)
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

func TestLogLevel(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     string
		args    []string
		logged  []string // of debug, info, warn, error
		wantErr string
	}{
		{name: "info_by_default", logged: []string{"info", "warn", "error"}},
		{name: "debug_from_environment", env: "debug", logged: []string{"debug", "info", "warn", "error"}},
		{name: "flag_over_environment", env: "debug", args: []string{"-log-level", "ERROR"}, logged: []string{"error"}},
		{name: "warn", args: []string{"-log-level", "warn"}, logged: []string{"warn", "error"}},
		{name: "unknown_level_refused", env: "verbose", wantErr: `YCI_LOG_LEVEL="verbose": not a log level: write debug, info, warn or error`},
		{name: "offset_refused", args: []string{"-log-level", "info+2"}, wantErr: "not a log level"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := New("test")
			s.SetOutput(&strings.Builder{})
			var level slog.Level
			s.LogLevelVar(&level)
			err := s.Parse(tt.args, func(k string) string {
				if k == "YCI_LOG_LEVEL" {
					return tt.env
				}
				return ""
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			log := NewLogger(false, level, &b)
			log.Debug("debug")
			log.Info("info")
			log.Warn("warn")
			log.Error("error")
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
				_, msg, _ := strings.Cut(line, "msg=")
				got = append(got, msg)
			}
			if strings.Join(got, " ") != strings.Join(tt.logged, " ") {
				t.Errorf("logged %q, want %q", got, tt.logged)
			}
		})
	}
}
