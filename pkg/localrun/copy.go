package localrun

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// buildsMarker is written in every directory that holds local builds. A
// directory holding it is never copied into a test, wherever it lies: in
// the checkout under test (the default ./local), or in a checkout of
// another project run from there.
const buildsMarker = ".yci-local-builds"

// markBuilds creates dir and marks it as holding local builds, with a
// .gitignore so that git in the user's checkout does not list it either.
func markBuilds(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for name, content := range map[string]string{
		buildsMarker: "YourCI's local builds: never copied into a test.\n",
		".gitignore": "*\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("marking %s: %w", dir, err)
		}
	}
	return nil
}

// copyTree copies the working tree at src into dst, which must not exist,
// leaving out every .git (directory or file) and every directory that
// holds local builds (buildsMarker, or the path builds itself): a test gets
// the files of the checkout, uncommitted changes included, and cannot
// disturb the user's repository or the other tests. Symbolic links are
// copied as links, modes are kept.
func copyTree(src, dst, builds string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel != "." && d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() && rel != "." {
			skip, err := holdsBuilds(path, builds)
			if err != nil {
				return err
			}
			if skip {
				return filepath.SkipDir
			}
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		default:
			return nil // sockets, fifos and devices are not part of a checkout
		}
	})
}

// holdsBuilds reports whether dir is builds or carries the marker.
func holdsBuilds(dir, builds string) (bool, error) {
	if dir == builds {
		return true, nil
	}
	_, err := os.Lstat(filepath.Join(dir, buildsMarker))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if mode&0o111 != 0 {
		// No process may fork while an executable is open for writing: a
		// child would hold the descriptor until its exec, and a test
		// starting the copy meanwhile fails with "text file busy" (Go
		// issue 22315). Tests of other copies start alongside this one.
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}
