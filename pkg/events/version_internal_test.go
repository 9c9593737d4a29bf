package events

import "testing"

func TestServerAtLeast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		version string
		want    bool
	}{
		{"2.9.10", false},
		{"2.10.3", false},
		{"2.10.4", true},
		{"2.10.4-beta.1", true},
		{"2.15.2", true},
		{"3.0.0", true},
		{"", false}, // not connected: assume the oldest server
		{"garbage", false},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			t.Parallel()
			if got := serverAtLeast(tt.version, termReasonSince); got != tt.want {
				t.Errorf("serverAtLeast(%q, 2.10.4) = %v, want %v", tt.version, got, tt.want)
			}
		})
	}
}
