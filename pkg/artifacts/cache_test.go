package artifacts

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

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

func TestCacheDirIsPerRepositoryAndSurvivesCleanup(t *testing.T) {
	t.Parallel()
	w, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := w.CacheDir("acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.CacheDir("acme", "other")
	if err != nil {
		t.Fatal(err)
	}
	if a == b || filepath.Dir(a) != filepath.Join(w.Root(), ".cache", "acme") {
		t.Fatalf("caches %s and %s", a, b)
	}
	if _, err := w.CacheDir("acme", "../x"); err == nil {
		t.Error("a repository name with a path in it got a cache")
	}
	marker := filepath.Join(a, "marker")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cleanup(t.Context(), 0, time.Now().Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("cleanup removed the cache: %v", err)
	}
}
