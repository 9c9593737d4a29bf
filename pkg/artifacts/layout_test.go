package artifacts

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLayoutIsTheSeeds(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	b := Build{Owner: "jpic", Repo: "test_project", Pull: 123, Number: 1}
	const name = "py34-dj18"
	tests := []struct {
		method string
		path   func() (string, error)
		want   string
	}{
		{"MirrorDir", func() (string, error) { return w.MirrorDir(b.Owner, b.Repo) }, "jpic/test_project/source"},
		{"BuildDir", func() (string, error) { return w.BuildDir(b) }, "jpic/test_project/pulls/123/1"},
		{"SourceDir", func() (string, error) { return w.SourceDir(b) }, "jpic/test_project/pulls/123/1/source"},
		{"TestDir", func() (string, error) { return w.TestDir(b, name) }, "jpic/test_project/pulls/123/1/py34-dj18"},
		{"TestSourceDir", func() (string, error) { return w.TestSourceDir(b, name) }, "jpic/test_project/pulls/123/1/py34-dj18/source"},
		{"LogPath", func() (string, error) { return w.LogPath(b, name) }, "jpic/test_project/pulls/123/1/py34-dj18/out.txt"},
		{"LogLink", func() (string, error) { return w.LogLink(b, name) }, "jpic/test_project/123-1-py34-dj18-out.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			got, err := tt.path()
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(w.Root(), tt.want); got != want {
				t.Errorf("%s = %s, want %s", tt.method, got, want)
			}
		})
	}
}

func TestPathMethodsRefuseBadBuilds(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	tests := []struct {
		name string
		b    Build
		test string
	}{
		{"zero_pull", Build{Owner: "o", Repo: "r", Pull: 0, Number: 1}, "t"},
		{"negative_build", Build{Owner: "o", Repo: "r", Pull: 1, Number: -1}, "t"},
		{"owner_escaping", Build{Owner: "..", Repo: "r", Pull: 1, Number: 1}, "t"},
		{"repo_with_slash", Build{Owner: "o", Repo: "a/b", Pull: 1, Number: 1}, "t"},
		{"test_name_escaping", Build{Owner: "o", Repo: "r", Pull: 1, Number: 1}, "../../x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := map[string]func() (string, error){
				"TestDir":       func() (string, error) { return w.TestDir(tt.b, tt.test) },
				"TestSourceDir": func() (string, error) { return w.TestSourceDir(tt.b, tt.test) },
				"LogPath":       func() (string, error) { return w.LogPath(tt.b, tt.test) },
				"LogLink":       func() (string, error) { return w.LogLink(tt.b, tt.test) },
				"CreateTestDir": func() (string, error) { return w.CreateTestDir(tt.b, tt.test) },
			}
			for method, call := range calls {
				if got, err := call(); !errors.Is(err, ErrInvalid) {
					t.Errorf("%s = %q, %v; want ErrInvalid", method, got, err)
				}
			}
			if err := w.LinkLog(tt.b, tt.test); !errors.Is(err, ErrInvalid) {
				t.Errorf("LinkLog = %v, want ErrInvalid", err)
			}
		})
	}
	entries, err := os.ReadDir(w.Root())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("refused calls created %d entries in the root", len(entries))
	}
}

func FuzzTestDir(f *testing.F) {
	f.Add("jpic", "test_project", "py34-dj18", 123, 1)
	f.Add("..", "..", "..", 1, 1)
	f.Add("a/b", "../../x", "source", 0, -1)
	f.Add("-rf", ".github", ".x", 1, 2)
	w, err := Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, owner, repo, name string, pull, number int) {
		b := Build{Owner: owner, Repo: repo, Pull: pull, Number: number}
		dir, err := w.TestDir(b, name)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal %v does not wrap ErrInvalid", err)
			}
			return
		}
		buildDir, err := w.BuildDir(b)
		if err != nil {
			t.Fatalf("TestDir accepted what BuildDir refuses: %v", err)
		}
		if filepath.Dir(dir) != buildDir || !inside(w.Root(), dir) {
			t.Fatalf("TestDir = %s escapes build directory %s", dir, buildDir)
		}
		link, err := w.LogLink(b, name)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(link) != filepath.Join(w.Root(), owner, repo) || filepath.Clean(link) != link {
			t.Fatalf("LogLink = %s is not directly in the repository directory", link)
		}
		if len(filepath.Base(link)) > 255 {
			t.Fatalf("LogLink name is %d bytes, longer than a file name may be", len(filepath.Base(link)))
		}
	})
}

func TestCreateTestDirRefusesSymlinkedDirectories(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	outside := t.TempDir()
	b := Build{Owner: "o", Repo: "r", Pull: 1, Number: 1}
	pulls := filepath.Join(w.Root(), "o", "r", "pulls")
	if err := os.MkdirAll(filepath.Dir(pulls), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, pulls); err != nil {
		t.Fatal(err)
	}
	if _, err := w.CreateTestDir(b, "t"); !errors.Is(err, ErrInvalid) {
		t.Errorf("CreateTestDir through a symlink = %v, want ErrInvalid", err)
	}
	if err := w.LinkLog(b, "t"); err != nil {
		t.Errorf("LinkLog does not go through pulls/ and should work: %v", err)
	}
	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("%d entries were created outside the workspace", len(entries))
	}
}

func TestRepoOf(t *testing.T) {
	t.Parallel()
	w, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path  string
		owner, repo string
		ok          bool
	}{
		{"test_working_copy", "acme/app.go/pulls/3/1/unit/source", "acme", "app.go", true},
		{"build_checkout", "acme/app.go/pulls/3/1/source", "acme", "app.go", true},
		{"mirror_is_no_pull_tree", "acme/app.go/source", "", "", false},
		{"cache_is_no_repository", ".cache/acme/app.go/pulls/1", "", "", false},
		{"local_builds", "local/proj/1/unit/source", "", "", false},
		{"outside_root", "../elsewhere/acme/app/pulls/1", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owner, repo, ok := w.RepoOf(filepath.Join(w.Root(), tt.path))
			if owner != tt.owner || repo != tt.repo || ok != tt.ok {
				t.Errorf("RepoOf(%s) = %q, %q, %v; want %q, %q, %v", tt.path, owner, repo, ok, tt.owner, tt.repo, tt.ok)
			}
		})
	}
}
