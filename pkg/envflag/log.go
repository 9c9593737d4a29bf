package envflag

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// JSONLogVar registers -json-log ($YCI_JSON_LOG), the log format every
// YourCI command offers: text for people, JSON lines for log collectors.
func (s *Set) JSONLogVar(p *bool) {
	s.BoolVar(p, "json-log", false, "log JSON lines instead of text")
	s.Env("json-log", "YCI_JSON_LOG")
}

// LogLevelVar registers -log-level ($YCI_LOG_LEVEL), the least level every
// YourCI command logs: info by default; debug adds what an operator needs
// to find where time goes (the stages of a test's start, for one), warn
// and error keep only what needs attention.
func (s *Set) LogLevelVar(p *slog.Level) {
	*p = slog.LevelInfo
	s.Var((*levelValue)(p), "log-level", "least `level` logged: debug, info, warn or error")
	s.Env("log-level", "YCI_LOG_LEVEL")
}

// levelValue is a slog.Level as a flag, by the four names only: slog's
// own parser also takes offsets ("info+2"), which no operator needs.
type levelValue slog.Level

var levelNames = []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}

func (l *levelValue) Set(s string) error {
	for _, lv := range levelNames {
		if strings.EqualFold(s, lv.String()) {
			*l = levelValue(lv)
			return nil
		}
	}
	return fmt.Errorf("not a log level: write debug, info, warn or error")
}

func (l *levelValue) String() string { return strings.ToLower(slog.Level(*l).String()) }
func (l *levelValue) Get() any       { return slog.Level(*l) }

// NewLogger returns the logger -json-log and -log-level chose, writing to
// w. Durations are written as Go duration strings ("1.5s", "250ms") in
// both formats, so a JSON line reads the same as a text one instead of
// bare nanoseconds.
func NewLogger(json bool, level slog.Level, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationAsString}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func durationAsString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
