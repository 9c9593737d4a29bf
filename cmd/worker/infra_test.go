package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/worker"
)

// -infra-give-up bounds how long a test waits out infrastructure errors:
// a few hours unless set, from the flag or YCI_INFRA_GIVE_UP, and never
// zero or negative.
func TestInfraGiveUpOption(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    time.Duration
		wantErr string
	}{
		{"default", nil, nil, worker.DefaultInfraGiveUp, ""},
		{"flag", []string{"-infra-give-up", "30m"}, nil, 30 * time.Minute, ""},
		{"environment", nil, map[string]string{"YCI_INFRA_GIVE_UP": "6h"}, 6 * time.Hour, ""},
		{"zero_refused", []string{"-infra-give-up", "0s"}, nil, 0, "-infra-give-up must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseOptions(tc.args, env(tc.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if o.InfraGiveUp != tc.want {
				t.Errorf("InfraGiveUp = %s, want %s", o.InfraGiveUp, tc.want)
			}
			// Validate also reports what this test leaves unset
			// (credentials): only what it says of the bound matters.
			err = o.Validate()
			if says := err != nil && strings.Contains(err.Error(), "-infra-give-up"); says != (tc.wantErr != "") ||
				(says && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate() = %v, want it to say %q of -infra-give-up", err, tc.wantErr)
			}
		})
	}
}
