package artifacts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	t.Run("parts_share_one_layout_mirrors_and_checkouts", func(t *testing.T) {
		t.Parallel()
		// A second Mirrors would hold its own in-process locks and
		// memory of fetches; a second Checkouts its own kept refs.
		w := openWorkspace(t)
		roots := map[string]string{
			"Logs": w.Logs.layout.root, "Mirrors": w.Mirrors.layout.root, "Checkouts": w.Checkouts.layout.root,
			"Caches": w.Caches.layout.root, "Cleaner": w.Cleaner.layout.root,
		}
		for part, root := range roots {
			if root != w.Root() {
				t.Errorf("%s is rooted at %s, not the workspace's %s", part, root, w.Root())
			}
		}
		if w.Merges.mirrors != w.Mirrors || w.Checkouts.mirrors != w.Mirrors {
			t.Error("Merges or Checkouts lock and fetch through another Mirrors than the workspace's")
		}
		if w.Cleaner.checkouts != w.Checkouts {
			t.Error("Cleaner unpins through another Checkouts than the workspace's")
		}
	})
	t.Run("refuses_an_empty_root", func(t *testing.T) {
		t.Parallel()
		if _, err := Open(""); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(\"\") = %v, want ErrInvalid", err)
		}
	})
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
