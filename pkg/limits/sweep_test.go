package limits

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestSweepFileProtocol: only the cgroups of dead worker processes go, on
// either kind of hierarchy, counted once per cgroup however many
// controllers it spans.
func TestSweepFileProtocol(t *testing.T) {
	dirs := []string{"yci-100-1", "yci-100-2", "yci-200-3", "yci-x-1", "other", "worker"}
	tests := []struct {
		name    string
		parents []string // controller keys
		want    int
		kept    []string
	}{
		{name: "v1_spanning_memory_and_pids", parents: []string{"memory", "pids"}, want: 2, kept: []string{"yci-200-3", "yci-x-1", "other", "worker"}},
		{name: "v2_unified", parents: []string{""}, want: 2, kept: []string{"yci-200-3", "yci-x-1", "other", "worker"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parents := map[string]string{}
			for _, key := range tt.parents {
				parents[key] = t.TempDir()
				for _, d := range dirs {
					if err := os.Mkdir(filepath.Join(parents[key], d), 0o755); err != nil {
						t.Fatal(err)
					}
				}
			}
			n, err := sweep(parents, func(pid int) bool { return pid == 200 })
			if err != nil || n != tt.want {
				t.Fatalf("sweep = %d, %v; want %d", n, err, tt.want)
			}
			for _, parent := range parents {
				entries, err := os.ReadDir(parent)
				if err != nil {
					t.Fatal(err)
				}
				var left []string
				for _, e := range entries {
					left = append(left, e.Name())
				}
				if strings.Join(left, " ") != strings.Join(slices.Sorted(slices.Values(tt.kept)), " ") {
					t.Errorf("left in %s: %v; want %v", parent, left, tt.kept)
				}
			}
		})
	}
}

// realHierarchy is this box's v1 hierarchy, or a skip (a failure with
// YCI_REQUIRE_CGROUPS=1).
func realHierarchy(t *testing.T) hierarchy {
	t.Helper()
	procCgroup, err1 := os.ReadFile("/proc/self/cgroup")
	mountinfo, err2 := os.ReadFile("/proc/self/mountinfo")
	h, err := detect(string(procCgroup), string(mountinfo), "")
	if err = errors.Join(err1, err2, err); err == nil && h.mode == V1 {
		err = usable(string(procCgroup), string(mountinfo), "")
	} else if err == nil {
		t.Skipf("not a cgroup v1 box (%s)", h.mode)
	}
	if err != nil {
		if os.Getenv("YCI_REQUIRE_CGROUPS") == "1" {
			t.Fatalf("cgroups are required: %v", err)
		}
		t.Skipf("cgroups not usable: %v", err)
	}
	return h
}

// TestSweepLive plays a worker killed mid-test: its cgroup still holds a
// running process. The next worker's Open kills it, removes the cgroup
// and counts it, and keeps a live process's cgroup.
func TestSweepLive(t *testing.T) {
	h := realHierarchy(t)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := &Group{mode: V1, dirs: map[string]string{}, parents: h.dirs}
	live := filepath.Join(h.dirs["pids"], groupName(os.Getppid(), 1))
	for key, parent := range h.dirs {
		dead.dirs[key] = filepath.Join(parent, groupName(gone.Process.Pid, 1))
		if err := os.Mkdir(dead.dirs[key], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(live, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(live) })
	left := exec.Command("sleep", "1000")
	if err := dead.Start(left); err != nil {
		t.Fatal(errors.Join(err, dead.remove()))
	}
	l, err := Open(Config{Memory: 64 << 20, Pids: 16})
	if err != nil {
		t.Fatal(err)
	}
	if l.Swept() < 1 {
		t.Fatalf("swept %d; want at least 1", l.Swept())
	}
	werr := left.Wait()
	if ws, ok := left.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the process left in the cgroup ended with %v; want killed", werr)
	}
	for _, d := range dead.dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", d, err)
		}
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live process's cgroup was swept: %v", err)
	}
}

// TestV1SettingsLive: memory and swap together are capped where the
// kernel accounts swap, so a tmpfs cannot slip past the limit into swap.
func TestV1SettingsLive(t *testing.T) {
	h := realHierarchy(t)
	l := &Limits{h: h, parents: h.dirs, cfg: Config{Memory: 96 << 20, Pids: 16}}
	g, err := l.create()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	memsw := filepath.Join(g.dirs["memory"], "memory.memsw.limit_in_bytes")
	if _, err := os.Stat(memsw); err != nil {
		t.Skipf("no swap accounting here: %v", err)
	}
	b, err := os.ReadFile(memsw)
	if err != nil || strings.TrimSpace(string(b)) != "100663296" {
		t.Fatalf("%s = %q, %v; want 100663296", memsw, b, err)
	}
}

// TestStartV2Live starts a command with CLONE_INTO_CGROUP into a cgroup
// of this box's v2 hierarchy (which has no memory or pids controller on a
// hybrid box, but takes processes): its first instruction runs there, and
// Close kills what it left running there (cgroup.kill) and removes it.
func TestStartV2Live(t *testing.T) {
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := parseMountinfo(string(mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := mounts[""]
	if !ok {
		t.Skip("no cgroup2 mount")
	}
	name := groupName(os.Getpid(), seq.Add(1))
	dir := filepath.Join(m.point, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a v2 cgroup: %v", err)
	}
	g := &Group{mode: V2, dirs: map[string]string{"": dir}}
	t.Cleanup(func() {
		// After a failure before Close.
		if _, err := os.Stat(dir); err == nil {
			if err := g.remove(); err != nil {
				t.Error(err)
			}
		}
	})
	// The script reports its cgroup, leaves a child behind, and exits
	// once its output is read.
	cmd := exec.Command("bash", "-c", "cat /proc/self/cgroup; (exec -a "+name+" sleep 1000) >/dev/null & echo $!")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(cmd); err != nil {
		t.Fatal(errors.Join(err, g.remove()))
	}
	b, err := io.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if want := "0::/" + name + "\n"; !strings.Contains(string(b), want) {
		t.Errorf("cgroups %q; want %q", b, want)
	}
	fields := strings.Fields(string(b))
	left, err := strconv.Atoi(fields[len(fields)-1])
	if err != nil {
		t.Fatalf("no pid of the child in %q", b)
	}
	if !running(left) {
		t.Fatalf("the child %d does not run before Close", left)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there: %v", dir, err)
	}
	if running(left) {
		t.Errorf("the child %d left in the cgroup still runs", left)
	}
}

// running reports whether pid is a process that has not exited: a zombie
// whose parent never reaps it (a container's init) does not count.
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}
