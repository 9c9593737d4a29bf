package artifacts

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// A re-run of a test (a /retest) is a new series of attempts of the same
// build, beside the earlier runs so that their logs stay readable:
//
//	<owner>/<repo>/pulls/<pr>/<build>/<name>/out.txt                 the build's own run
//	<owner>/<repo>/pulls/<pr>/<build>/<name>/rerun-<k>/out.txt       its k-th re-run
//	<owner>/<repo>/pulls/<pr>/<build>/<name>/rerun-<k>/source/       the re-run's working copy
//
// Run 0 is the build's own run, whose paths are TestDir's. The seed's
// symlink <pr>-<build>-<name>-out.txt keeps naming the build's own run.
// Cleanup removes a build's re-runs with the build.

// rerunPrefix starts a re-run's directory name; it cannot be a test's
// working copy ("source") nor collide with another test, which lives one
// level up.
const rerunPrefix = "rerun-"

// RunDir is the directory of one run of a test: TestDir for rerun 0, and
// TestDir/rerun-<k> for the k-th re-run.
func (l Layout) RunDir(b Build, name string, rerun int) (string, error) {
	dir, err := l.TestDir(b, name)
	if err != nil {
		return "", err
	}
	switch {
	case rerun < 0:
		return "", fmt.Errorf("%w: re-run number %d is negative", ErrInvalid, rerun)
	case rerun == 0:
		return dir, nil
	}
	return filepath.Join(dir, rerunPrefix+strconv.Itoa(rerun)), nil
}

// RunSourceDir is the run's own working copy, source/ in its RunDir.
func (l Layout) RunSourceDir(b Build, name string, rerun int) (string, error) {
	dir, err := l.RunDir(b, name, rerun)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "source"), nil
}

// RunLogPath is the run's log, out.txt in its RunDir.
func (g Logs) RunLogPath(b Build, name string, rerun int) (string, error) {
	dir, err := g.layout.RunDir(b, name, rerun)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "out.txt"), nil
}

// CreateRunDir creates the run's directory (and those above it) without
// following symlinks, and returns its path.
func (l Layout) CreateRunDir(b Build, name string, rerun int) (string, error) {
	dir, err := l.RunDir(b, name, rerun)
	if err != nil {
		return "", err
	}
	if err := l.ensureDir(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// RunLogURL is the address under which the run's log is served: LogURL
// for rerun 0, and with "rerun-<k>/" before "out.txt" for a re-run.
func (g Logs) RunLogURL(httpRoot string, b Build, name string, rerun int) (string, error) {
	u, err := g.LogURL(httpRoot, b, name)
	if err != nil {
		return "", err
	}
	if _, err := g.layout.RunDir(b, name, rerun); err != nil {
		return "", err
	}
	if rerun == 0 {
		return u, nil
	}
	return strings.TrimSuffix(u, "out.txt") + rerunPrefix + strconv.Itoa(rerun) + "/out.txt", nil
}
