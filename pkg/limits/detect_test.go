package limits

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const hybridMountinfo = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const unifiedMountinfo = `25 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
`

// fakeFS lays out files (path relative to root -> content) in a temporary
// root.
func fakeFS(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name, cgroup, mountinfo string
		files                   map[string]string
		want                    hierarchy
		wantErr                 string
	}{
		{name: "hybrid_without_v2_controllers_uses_v1",
			cgroup:    "8:pids:/\n4:memory:/box/a\n1:cpu:/\n0::/\n",
			mountinfo: hybridMountinfo,
			files:     map[string]string{"sys/fs/cgroup/unified/cgroup.controllers": ""},
			want: hierarchy{mode: V1, dirs: map[string]string{"memory": "/sys/fs/cgroup/memory/box/a",
				"pids": "/sys/fs/cgroup/pids", "cpu": "/sys/fs/cgroup/cpu"}}},
		{name: "unified_with_controllers_uses_v2",
			cgroup:    "0::/system.slice/yourci-worker.service\n",
			mountinfo: unifiedMountinfo,
			files:     map[string]string{"sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids\n"},
			want:      hierarchy{mode: V2, dirs: map[string]string{"": "/sys/fs/cgroup/system.slice/yourci-worker.service"}}},
		{name: "unified_without_memory_is_an_error_naming_it",
			cgroup:    "0::/user.slice\n",
			mountinfo: unifiedMountinfo,
			files:     map[string]string{"sys/fs/cgroup/cgroup.controllers": "cpu pids\n"},
			wantErr:   "no memory and pids controllers"},
		{name: "container_namespace_root_is_stripped",
			cgroup:    "4:memory:/docker/abc\n8:pids:/docker/abc\n",
			mountinfo: "34 30 0:31 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n38 30 0:35 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n",
			want:      hierarchy{mode: V1, dirs: map[string]string{"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeFS(t, tt.files)
			got, err := detect(tt.cgroup, tt.mountinfo, root)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("detect = %v, %v; want error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.mode != tt.want.mode || len(got.dirs) != len(tt.want.dirs) {
				t.Fatalf("detect = %+v; want %+v", got, tt.want)
			}
			for k, d := range tt.want.dirs {
				if got.dirs[k] != filepath.Join(root, d) {
					t.Errorf("dir %q = %s; want %s", k, got.dirs[k], filepath.Join(root, d))
				}
			}
		})
	}
}

// TestV2FileProtocol runs the v2 path against a fake cgroupfs: the worker
// moves into a leaf, enables the controllers for its children, and an
// attempt's cgroup gets its limits and reports oom_kill and pids max.
func TestV2FileProtocol(t *testing.T) {
	unit := "sys/fs/cgroup/system.slice/w.service"
	root := fakeFS(t, map[string]string{
		"sys/fs/cgroup/cgroup.controllers": "cpu memory pids\n",
		unit + "/cgroup.controllers":       "cpu memory pids\n",
		unit + "/cgroup.subtree_control":   "",
	})
	h, err := detect("0::/system.slice/w.service\n", unifiedMountinfo, root)
	if err != nil || h.mode != V2 {
		t.Fatalf("detect = %+v, %v", h, err)
	}
	if err := delegate(h.dirs[""], 4242); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(unit + "/worker/cgroup.procs"); got != "4242" {
		t.Errorf("worker leaf cgroup.procs = %q", got)
	}
	if got := read(unit + "/cgroup.subtree_control"); got != "+memory +pids +cpu" {
		t.Errorf("subtree_control = %q", got)
	}
	l := &Limits{h: h, parents: h.dirs, cfg: Config{Memory: 300 << 20, Pids: 64, CPUWeight: 50}}
	g, err := l.create()
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(root, g.dirs[""])
	for file, want := range map[string]string{"memory.max": "314572800", "pids.max": "64", "cpu.weight": "50", "memory.oom.group": "1"} {
		if got := read(filepath.Join(rel, file)); got != want {
			t.Errorf("%s = %q; want %q", file, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(g.dirs[""], "memory.swap.max")); err == nil {
		t.Error("memory.swap.max written though the kernel has none")
	}
	if e := g.exceeded(); e != nil {
		t.Fatalf("exceeded with no events = %v", e)
	}
	os.WriteFile(filepath.Join(g.dirs[""], "memory.events"), []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"), 0o644)
	os.WriteFile(filepath.Join(g.dirs[""], "pids.events"), []byte("max 0\n"), 0o644)
	if e := g.exceeded(); e == nil || !e.Memory || e.Pids || e.Errored() || !strings.Contains(e.Error(), "300 MiB") {
		t.Fatalf("exceeded = %+v; want memory only", e)
	}
	os.WriteFile(filepath.Join(g.dirs[""], "memory.events"), []byte("oom_kill 0\n"), 0o644)
	os.WriteFile(filepath.Join(g.dirs[""], "pids.events"), []byte("max 12\n"), 0o644)
	if e := g.exceeded(); e == nil || !e.Pids || !e.Errored() || !strings.Contains(e.Error(), "64 processes") {
		t.Fatalf("exceeded = %+v; want pids", e)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{2 << 30: "2 GiB", 3 << 29: "1.5 GiB", 300 << 20: "300 MiB", 512: "512 bytes"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q; want %q", n, got, want)
		}
	}
}

func TestUsable(t *testing.T) {
	const cgroup = "0::/system.slice/yourci-worker.service\n"
	controllers := map[string]string{"sys/fs/cgroup/cgroup.controllers": "cpu memory pids\n"}
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{name: "own_cgroup_present_is_usable",
			files: map[string]string{
				"sys/fs/cgroup/cgroup.controllers":                              "cpu memory pids\n",
				"sys/fs/cgroup/system.slice/yourci-worker.service/cgroup.procs": "",
			}},
		{name: "own_cgroup_missing_names_it", files: controllers,
			wantErr: "/sys/fs/cgroup/system.slice/yourci-worker.service: no such file"},
		{name: "no_controllers_names_them",
			files:   map[string]string{"sys/fs/cgroup/cgroup.controllers": "cpu\n"},
			wantErr: "no memory and pids controllers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := usable(cgroup, unifiedMountinfo, fakeFS(t, tt.files))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("usable = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("usable = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}
