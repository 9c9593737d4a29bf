package main

import (
	"context"
	"strings"
	"testing"
)

func TestLimitsFlags(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"-limits", "ulimit"}, env(map[string]string{"GITHUB_ACCESS_TOKEN": "t"}), &stdout, &stderr)
	if want := `-limits must be cgroup or none, not "ulimit"`; code != 2 || !strings.Contains(stderr.String(), want) {
		t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), want)
	}
}

func TestLimitsOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    LimitsOptions
		wantErr string
		want    string // in String() when no error
	}{
		{name: "none_enforces_only_the_oom_score", opts: LimitsOptions{Mode: "none"}, want: "none"},
		{name: "impossible_limit_names_the_way_out", opts: LimitsOptions{Mode: "cgroup", Memory: 10, Pids: 64}, wantErr: "-limits none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := tt.opts.open(false, 2, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("open = %v; want error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(l.String(), tt.want) {
				t.Fatalf("open = %v, %v; want %q", l, err, tt.want)
			}
		})
	}
}
