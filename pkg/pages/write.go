package pages

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path"
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
