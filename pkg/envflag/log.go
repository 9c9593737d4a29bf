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

// NewLogger returns the logger -json-log chose, writing to w.
func NewLogger(json bool, w io.Writer) *slog.Logger {
	if json {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
