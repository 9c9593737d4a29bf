package artifacts

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// readHostile reads at most max bytes of the regular file at path, a path
// code under test could write (a checkout, a cache). It never follows a
// symlink in the last component (O_NOFOLLOW), never blocks opening a FIFO
// or a device (O_NONBLOCK), and refuses anything fstat does not call a
// regular file, so a link to a secret, a FIFO or /dev/zero in its place is
// an error, not a leak, a hang or an endless read.
func readHostile(path string, max int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("inspecting %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file (%s)", ErrInvalid, path, info.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(max)))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, nil
}
