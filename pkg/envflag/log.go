package envflag

import (
	"io"
	"log/slog"
)

// JSONLogVar registers -json-log ($YCI_JSON_LOG), the log format every
// YourCI command offers: text for people, JSON lines for log collectors.
func (s *Set) JSONLogVar(p *bool) {
	s.BoolVar(p, "json-log", false, "log JSON lines instead of text")
	s.Env("json-log", "YCI_JSON_LOG")
}

// NewLogger returns the logger -json-log chose, writing to w. Durations
// are written as Go duration strings ("1.5s", "250ms") in both formats, so
// a JSON line reads the same as a text one instead of bare nanoseconds.
func NewLogger(json bool, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{ReplaceAttr: durationAsString}
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
