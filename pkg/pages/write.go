package pages

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/yourci/yourci/pkg/events"
)

// WriteFile replaces the file name, relative to root, with data so that
// a reader (nginx) sees the old content or the new, never a part: it
// writes a temporary file beside it and renames it into place. Through
// root nothing outside the root's directory is written, whatever links a
// test planted; a link at name itself is replaced, not followed. The
// directory must exist. Files are world-readable, as nginx must read them.
func WriteFile(root *os.Root, name string, data []byte) error {
	tmp := path.Join(path.Dir(name), ".tmp-"+path.Base(name)+"-"+rand.Text())
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("writing %s: %w", name, errors.Join(err, root.Remove(tmp)))
	}
	if err := root.Rename(tmp, name); err != nil {
		return fmt.Errorf("writing %s: %w", name, errors.Join(err, root.Remove(tmp)))
	}
	return nil
}

// URL is where build k's page is served under httpRoot (the box's
// HTTP_ROOT), or "" when httpRoot is empty: the box serves no pages.
func URL(httpRoot string, k events.BuildKey) string {
	if httpRoot == "" {
		return ""
	}
	segments := []string{k.Repo.Owner, k.Repo.Name, "pulls", strconv.Itoa(k.Pull), strconv.Itoa(k.Build), "index.html"}
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	return strings.TrimRight(httpRoot, "/") + "/" + strings.Join(segments, "/")
}
