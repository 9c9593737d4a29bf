package artifacts

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Logs are the files a reader follows a test through: each run's out.txt,
// the seed's symlink to a test's log, the addresses they are served under,
// and a head's preparation log (prepare.go). Like Layout it holds no state;
// get one from Open.
type Logs struct {
	layout Layout
}

// LogPath is the test's log file, out.txt in its test directory.
func (g Logs) LogPath(b Build, name string) (string, error) {
	dir, err := g.layout.TestDir(b, name)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "out.txt"), nil
}

// LogLink is where LinkLog puts the test's log symlink:
// <owner>/<repo>/<pr>-<build>-<name>-out.txt.
func (g Logs) LogLink(b Build, name string) (string, error) {
	if _, err := g.layout.TestDir(b, name); err != nil {
		return "", err
	}
	return filepath.Join(g.layout.root, b.Owner, b.Repo, linkName(b, name)), nil
}

func linkName(b Build, name string) string {
	return fmt.Sprintf("%d-%d-%s-out.txt", b.Pull, b.Number, name)
}

// LogURL is the address under which the test's log is served:
// httpRoot + "/<owner>/<repo>/pulls/<pr>/<build>/<name>/out.txt", with each
// segment path-escaped and no doubled slash at the join.
func (g Logs) LogURL(httpRoot string, b Build, name string) (string, error) {
	if _, err := g.layout.TestDir(b, name); err != nil {
		return "", err
	}
	segments := []string{b.Owner, b.Repo, "pulls", strconv.Itoa(b.Pull), strconv.Itoa(b.Number), name, "out.txt"}
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	return strings.TrimRight(httpRoot, "/") + "/" + strings.Join(segments, "/"), nil
}

// LinkLog points the test's symlink at its out.txt, replacing any previous
// link atomically, so a reader never sees the link missing. The target is
// relative, so the workspace may be moved or served from another mount. The
// log itself need not exist yet.
func (g Logs) LinkLog(b Build, name string) error {
	link, err := g.LogLink(b, name)
	if err != nil {
		return err
	}
	if err := g.layout.ensureDir(filepath.Dir(link)); err != nil {
		return err
	}
	target := filepath.Join("pulls", strconv.Itoa(b.Pull), strconv.Itoa(b.Number), name, "out.txt")
	tmp := link + ".tmp-" + rand.Text()
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("linking log of %s %s: %w", b, name, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		if rmErr := os.Remove(tmp); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return fmt.Errorf("linking log of %s %s: %w", b, name, err)
	}
	return nil
}
