package artifacts

import (
	"path/filepath"
	"strings"
)

// cacheRoot holds the per-repository caches, <root>/.cache/<owner>/<repo>.
// Its name starts with a dot, which no owner may: Cleanup never walks it,
// nginx never serves it (see deploy/nginx/yourci.conf), and no repository's
// directory can collide with it.
const cacheRoot = ".cache"

// CacheDir is owner/repo's cache directory, <root>/.cache/<owner>/<repo>,
// created if missing. Tests of that repository, and only of that
// repository, keep their downloads and build caches there from one build
// to the next (see pkg/sandbox). Cleanup leaves it alone; deleting it is
// always safe.
func (w *Workspace) CacheDir(owner, repo string) (string, error) {
	if _, err := w.repoDir(owner, repo); err != nil {
		return "", err
	}
	dir := filepath.Join(w.root, cacheRoot, owner, repo)
	if err := w.ensureDir(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// RepoOf returns the repository whose pull requests' tree holds path (a
// build's checkout, a test's working copy): <root>/<owner>/<repo>/pulls/…;
// ok is false for any other path, the mirror included.
func (w *Workspace) RepoOf(path string) (owner, repo string, ok bool) {
	rel, err := filepath.Rel(w.root, filepath.Clean(path))
	if err != nil {
		return "", "", false
	}
	parts := strings.Split(rel, string(filepath.Separator))
	if len(parts) < 4 || parts[2] != "pulls" || ValidateOwner(parts[0]) != nil || ValidateRepo(parts[1]) != nil {
		return "", "", false
	}
	return parts[0], parts[1], true
}
