package artifacts

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// OpenHostile opens for reading the regular file at path, a path code
// under test could write or replace (a checkout, a cache, a log in a
// directory a test shares). It never follows a symlink in the last
// component (O_NOFOLLOW), never blocks opening a FIFO or a device
// (O_NONBLOCK), and refuses anything fstat does not call a regular file,
// so a link to a secret, a FIFO or /dev/zero in its place is an error, not
// a leak, a hang or an endless read. The caller bounds what it reads.
func OpenHostile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("inspecting %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a regular file (%s)", ErrInvalid, path, info.Mode().Type())
	}
	return f, nil
}

// readHostile reads at most max bytes of the regular file at path, opened
// as OpenHostile does.
func readHostile(path string, max int) ([]byte, error) {
	f, err := OpenHostile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(max)))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, nil
}
