package artifacts

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// MaxPrepareLog bounds a preparation log: AppendPrepareLog writes nothing
// past it but one line saying so, so a head that fails for hours (or a
// reason that is a megabyte of git output) cannot fill the disk.
const MaxPrepareLog = 64 << 10

// preparePrefix starts a preparation log's name; a build directory's name
// is all digits, so the two cannot collide.
const preparePrefix = "prepare-"

// PrepareLogPath is the log of the preparation of one head commit of a
// pull request, before and whatever its build number:
// <owner>/<repo>/pulls/<pr>/prepare-<sha>.txt.
func (g Logs) PrepareLogPath(owner, repo string, pull int, sha string) (string, error) {
	dir, err := g.layout.repoDir(owner, repo)
	if err != nil {
		return "", err
	}
	if pull <= 0 {
		return "", fmt.Errorf("%w: pull number %d is not positive", ErrInvalid, pull)
	}
	if err := events.ValidateSHA(sha); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return filepath.Join(dir, "pulls", strconv.Itoa(pull), preparePrefix+sha+".txt"), nil
}

// PrepareLogURL is the address under which PrepareLogPath is served:
// httpRoot + "/<owner>/<repo>/pulls/<pr>/prepare-<sha>.txt".
func (g Logs) PrepareLogURL(httpRoot, owner, repo string, pull int, sha string) (string, error) {
	if _, err := g.PrepareLogPath(owner, repo, pull, sha); err != nil {
		return "", err
	}
	segments := []string{owner, repo, "pulls", strconv.Itoa(pull), preparePrefix + sha + ".txt"}
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	return strings.TrimRight(httpRoot, "/") + "/" + strings.Join(segments, "/"), nil
}

// AppendPrepareLog appends text to the head's preparation log, creating
// it (and the directories above it, none of them through a symlink). The
// log holds at most MaxPrepareLog bytes: text beyond is dropped, and the
// write that reaches the limit ends with a line saying so. One call is one
// write, so attempts of several workers do not interleave within a call.
func (g Logs) AppendPrepareLog(owner, repo string, pull int, sha, text string) error {
	path, err := g.PrepareLogPath(owner, repo, pull, sha)
	if err != nil {
		return err
	}
	if err := g.layout.ensureDir(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("opening preparation log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return errors.Join(fmt.Errorf("reading preparation log size: %w", err), f.Close())
	}
	const full = "[yci] preparation log full; later lines are not kept\n"
	left := MaxPrepareLog - len(full) - 1 - int(fi.Size()) // 1: the newline before full
	switch {
	case left <= 0:
		text = ""
	case len(text) > left:
		text = text[:left] + "\n" + full
	}
	if text != "" {
		if _, err := f.WriteString(text); err != nil {
			return errors.Join(fmt.Errorf("writing preparation log: %w", err), f.Close())
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing preparation log: %w", err)
	}
	return nil
}

// removeOldPrepareLogs removes the preparation logs in prDir last written
// before cutoff.
func removeOldPrepareLogs(prDir string, cutoff time.Time) error {
	entries, err := os.ReadDir(prDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing %s: %w", prDir, err)
	}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), preparePrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(prDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing preparation log: %w", err))
		}
	}
	return errors.Join(errs...)
}
