package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	vcs := func(rev, modified string) *debug.BuildInfo {
		info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/yourci/yourci", Version: "(devel)"}}
		info.Settings = append(info.Settings, debug.BuildSetting{Key: "vcs.revision", Value: rev})
		if modified != "" {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: "vcs.modified", Value: modified})
		}
		return info
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name    string
		stamped string
		info    *debug.BuildInfo
		want    string
	}{
		{name: "stamped_release_wins", stamped: "v1.2.3", info: vcs(rev, "true"), want: "v1.2.3"},
		{name: "go_install_at_a_version", info: &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}, want: "v0.4.0"},
		{name: "clean_checkout_gives_the_commit", info: vcs(rev, "false"), want: "0123456789ab"},
		{name: "dirty_checkout_says_so", info: vcs(rev, "true"), want: "0123456789ab-dirty"},
		{name: "no_vcs_information", info: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, want: "devel"},
		{name: "no_build_information", want: "devel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := resolve(tt.stamped, tt.info); got != tt.want {
				t.Errorf("resolve = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLineNamesCommandVersionAndPlatform(t *testing.T) {
	t.Parallel()
	line := line("yci-worker")
	if !strings.HasPrefix(line, "yci-worker "+String()+" (go") || !strings.HasSuffix(line, ")") {
		t.Errorf("Line = %q, want \"yci-worker %s (go... os/arch)\"", line, String())
	}
}
