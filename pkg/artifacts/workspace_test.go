package artifacts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOpen(t *testing.T) {
	t.Parallel()
	t.Run("creates_the_root_and_resolves_symlinks", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		real := filepath.Join(dir, "real")
		if err := os.Mkdir(real, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("real", filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		w, err := Open(filepath.Join(dir, "link", "ws"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := filepath.EvalSymlinks(filepath.Join(real))
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Root(); got != filepath.Join(want, "ws") {
			t.Errorf("Root() = %s, want %s", got, filepath.Join(want, "ws"))
		}
		if info, err := os.Stat(w.Root()); err != nil || !info.IsDir() {
			t.Errorf("root not created: %v", err)
		}
	})
	t.Run("refuses_an_empty_root", func(t *testing.T) {
		t.Parallel()
		if _, err := Open(""); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(\"\") = %v, want ErrInvalid", err)
		}
	})
}

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

func TestLogURL(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	b := Build{Owner: "jpic", Repo: "test.project", Pull: 12, Number: 3}
	tests := []struct {
		name, httpRoot, want string
	}{
		{"plain_root", "https://ci.example.com", "https://ci.example.com/jpic/test.project/pulls/12/3/foo-x/out.txt"},
		{"trailing_slash_is_not_doubled", "https://ci.example.com/", "https://ci.example.com/jpic/test.project/pulls/12/3/foo-x/out.txt"},
		{"root_with_a_path", "https://ci.example.com/logs//", "https://ci.example.com/logs/jpic/test.project/pulls/12/3/foo-x/out.txt"},
		{"empty_root_gives_an_absolute_path", "", "/jpic/test.project/pulls/12/3/foo-x/out.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := w.LogURL(tt.httpRoot, b, "foo-x")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("LogURL(%q) = %s, want %s", tt.httpRoot, got, tt.want)
			}
		})
	}
	if _, err := w.LogURL("https://ci", b, "../x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("LogURL with a bad name = %v, want ErrInvalid", err)
	}
}

func TestValidationRefusesHostileNames(t *testing.T) {
	t.Parallel()
	bad := []string{"", ".", "..", "../../x", "a/b", "-rf", "--upload-pack=x", "with space", "nul\x00byte",
		"new\nline", "$(touch x)", "a\\b", "é", strings.Repeat("a", 200)}
	for _, s := range bad {
		t.Run("owner_"+s, func(t *testing.T) {
			if err := ValidateOwner(s); !errors.Is(err, ErrInvalid) {
				t.Errorf("ValidateOwner(%q) = %v, want ErrInvalid", s, err)
			}
		})
		t.Run("repo_"+s, func(t *testing.T) {
			if err := ValidateRepo(s); !errors.Is(err, ErrInvalid) {
				t.Errorf("ValidateRepo(%q) = %v, want ErrInvalid", s, err)
			}
		})
		t.Run("test_name_"+s, func(t *testing.T) {
			if err := ValidateTestName(s); !errors.Is(err, ErrInvalid) {
				t.Errorf("ValidateTestName(%q) = %v, want ErrInvalid", s, err)
			}
		})
	}
	extra := []struct {
		name  string
		check func(string) error
		input string
	}{
		{"owner_with_a_dot", ValidateOwner, "a.b"},
		{"test_name_source_is_the_checkout", ValidateTestName, "source"},
		{"test_name_index_html_is_the_build_page", ValidateTestName, "index.html"},
		{"test_name_build_json_is_the_build_state", ValidateTestName, "build.json"},
		{"test_name_with_a_leading_dot", ValidateTestName, ".hidden"},
		{"test_name_source_in_any_case", ValidateTestName, "Source"},
		{"test_name_over_100_bytes", ValidateTestName, strings.Repeat("a", 101)},
	}
	for _, tt := range extra {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.check(tt.input); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s(%q) = %v, want ErrInvalid", tt.name, tt.input, err)
			}
		})
	}
}

func TestValidationAcceptsRealNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		check func(string) error
		input string
	}{
		{"owner", ValidateOwner, "yourci-bot"},
		{"owner_with_an_underscore_as_enterprise_managed_users_have", ValidateOwner, "my_org"},
		{"repo_with_dots", ValidateRepo, "foo.bar_baz-2"},
		{"repo_dot_github", ValidateRepo, ".github"},
		{"test_name_from_env_values", ValidateTestName, "foo-x"},
		{"test_name_with_dots", ValidateTestName, "py3.11_dj4.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.check(tt.input); err != nil {
				t.Errorf("%q refused: %v", tt.input, err)
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

func TestLinkLog(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	b := Build{Owner: "o", Repo: "r", Pull: 7, Number: 2}
	dir, err := w.CreateTestDir(b, "foo-x")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "out.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link, err := w.LogLink(b, "foo-x")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("link_resolves_to_the_log", func(t *testing.T) {
		if err := w.LinkLog(b, "foo-x"); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(link)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "hello\n" {
			t.Errorf("link reads %q, want the log", got)
		}
		target, err := os.Readlink(link)
		if err != nil {
			t.Fatal(err)
		}
		if target != "pulls/7/2/foo-x/out.txt" {
			t.Errorf("link target %q is not the relative path of the log", target)
		}
	})
	t.Run("linking_again_replaces_and_leaves_no_temporary", func(t *testing.T) {
		if err := w.LinkLog(b, "foo-x"); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(filepath.Dir(link))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if diff := cmp.Diff([]string{"7-2-foo-x-out.txt", "pulls"}, names); diff != "" {
			t.Errorf("repository directory (-want +got):\n%s", diff)
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
