package envflag

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    int
		wantD   time.Duration
		wantErr string
	}{
		{name: "default_when_nothing_set", want: 1, wantD: time.Second},
		{name: "environment_overrides_default", env: map[string]string{"JOBS": "4", "WAIT": "1m"}, want: 4, wantD: time.Minute},
		{name: "flag_overrides_environment", env: map[string]string{"JOBS": "4"}, args: []string{"-j", "8"}, want: 8, wantD: time.Second},
		{name: "bad_variables_reported_together", env: map[string]string{"JOBS": "many", "WAIT": "soon"}, wantErr: `JOBS="many": parse error`},
		{name: "duration_without_unit_says_so", env: map[string]string{"WAIT": "30"}, wantErr: `WAIT="30": a duration needs a unit, such as 30s or 2m`},
		{name: "duration_flag_without_unit_says_so", args: []string{"-wait", "30"}, wantErr: `invalid value "30" for flag -wait: a duration needs a unit, such as 30s or 2m`},
		{name: "stray_argument_refused", args: []string{"extra"}, wantErr: "unexpected arguments: extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New("test")
			s.SetOutput(&strings.Builder{})
			j := s.Int("j", 1, "jobs")
			d := s.Duration("wait", time.Second, "wait")
			s.Env("j", "JOBS")
			s.Env("wait", "WAIT")
			err := s.Parse(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want it to mention %q", err, tt.wantErr)
				}
				if strings.Contains(tt.name, "together") && !strings.Contains(err.Error(), `WAIT="soon": not a duration: write a number and a unit, such as 30s`) {
					t.Fatalf("Parse error = %v, want both variables named", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *j != tt.want || *d != tt.wantD {
				t.Fatalf("got j=%d wait=%s, want j=%d wait=%s", *j, *d, tt.want, tt.wantD)
			}
		})
	}
}

func TestEnvAddsVariableToUsage(t *testing.T) {
	s := New("test")
	s.String("nats", "", "server URL")
	s.Env("nats", "NATS_URL")
	if got := s.Lookup("nats").Usage; got != "server URL ($NATS_URL)" {
		t.Fatalf("usage = %q", got)
	}
}
