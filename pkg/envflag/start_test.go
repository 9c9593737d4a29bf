package envflag

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
)

func TestSettle(t *testing.T) {
	t.Parallel()
	valid := func() error { return nil }
	invalid := func() error { return errors.New("-j 0 must be at least 1") }
	tests := []struct {
		name       string
		parseErr   error
		version    bool
		validate   func() error
		wantExit   int
		wantOK     bool
		wantStdout string
		wantStderr string
	}{
		{name: "help_ends_it_cleanly", parseErr: fmt.Errorf("parsing: %w", flag.ErrHelp), validate: valid, wantExit: ExitOK},
		{name: "parse_error_is_a_usage_error", parseErr: errors.New(`YCI_GRACE="30": a duration needs a unit`), validate: valid, wantExit: ExitUsage, wantStderr: "cmd: YCI_GRACE=\"30\": a duration needs a unit\n"},
		{name: "version_is_printed_before_validation", version: true, validate: invalid, wantExit: ExitOK, wantStdout: " (go"},
		{name: "invalid_configuration_is_a_usage_error", validate: invalid, wantExit: ExitUsage, wantStderr: "cmd: invalid configuration:\n-j 0 must be at least 1\n"},
		{name: "valid_configuration_goes_on", validate: valid, wantExit: ExitOK, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			exit, ok := Settle("cmd", tt.parseErr, tt.version, tt.validate, &stdout, &stderr)
			if exit != tt.wantExit || ok != tt.wantOK {
				t.Errorf("Settle = %d, %v; want %d, %v", exit, ok, tt.wantExit, tt.wantOK)
			}
			if tt.wantStdout == "" && stdout.Len() > 0 || !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q, want it to hold %q", stdout.String(), tt.wantStdout)
			}
			if stderr.String() != tt.wantStderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
