package events

import (
	"fmt"
	"testing"
)

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

// TestGroupMessagesOutrankOlderWorkers: a merge group's messages carry
// GroupVersion, which a worker from before merge groups (its decode took
// only version 1) terminates; this program reads every version it wrote.
func TestGroupMessagesOutrankOlderWorkers(t *testing.T) {
	t.Parallel()
	const sha = "1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b"
	group, err := GroupNumber(sha)
	if err != nil {
		t.Fatal(err)
	}
	if versionOf(7) != Version || versionOf(group) != GroupVersion || GroupVersion == Version {
		t.Fatalf("versionOf: pull %d, group %d; want %d and a newer one", versionOf(7), versionOf(group), Version)
	}
	olderWorkerReads := func(v int) bool { return v == 1 } // decode before merge groups
	if olderWorkerReads(versionOf(group)) {
		t.Errorf("an older worker would read a merge group's message (version %d)", versionOf(group))
	}
	if !olderWorkerReads(versionOf(7)) {
		t.Errorf("an older worker would refuse a pull's message (version %d)", versionOf(7))
	}
	cases := []struct {
		name string
		json string
		ok   bool
	}{
		{"pull_at_version_1", `{"v":1,"number":7}`, true},
		{"group_at_group_version", fmt.Sprintf(`{"v":%d,"number":%d}`, GroupVersion, group), true},
		{"group_published_before_group_version", fmt.Sprintf(`{"v":1,"number":%d}`, group), true},
		{"newer_than_known", fmt.Sprintf(`{"v":%d,"number":7}`, GroupVersion+1), false},
		{"no_version", `{"number":7}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, err := range []error{decodeErr[PullEvent](tc.json), decodeErr[TestJob](tc.json), decodeErr[CommandEvent](tc.json)} {
				if (err == nil) != tc.ok {
					t.Errorf("decode(%s) = %v, want ok %v", tc.json, err, tc.ok)
				}
			}
		})
	}
}

func decodeErr[T any](data string) error {
	_, err := decode[T]([]byte(data))
	return err
}
