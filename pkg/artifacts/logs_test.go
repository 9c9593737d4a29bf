package artifacts

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

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
