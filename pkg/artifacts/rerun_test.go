package artifacts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRunLayout(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	b := Build{Owner: "jpic", Repo: "test.project", Pull: 12, Number: 3}
	tests := []struct {
		rerun                     int
		dir, source, log, wantURL string
	}{
		{0, "jpic/test.project/pulls/12/3/foo-x", "jpic/test.project/pulls/12/3/foo-x/source",
			"jpic/test.project/pulls/12/3/foo-x/out.txt", "https://ci.example.com/jpic/test.project/pulls/12/3/foo-x/out.txt"},
		{2, "jpic/test.project/pulls/12/3/foo-x/rerun-2", "jpic/test.project/pulls/12/3/foo-x/rerun-2/source",
			"jpic/test.project/pulls/12/3/foo-x/rerun-2/out.txt", "https://ci.example.com/jpic/test.project/pulls/12/3/foo-x/rerun-2/out.txt"},
	}
	for _, tc := range tests {
		dir, err1 := w.RunDir(b, "foo-x", tc.rerun)
		source, err2 := w.RunSourceDir(b, "foo-x", tc.rerun)
		log, err3 := w.RunLogPath(b, "foo-x", tc.rerun)
		url, err4 := w.RunLogURL("https://ci.example.com/", b, "foo-x", tc.rerun)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatal(err)
		}
		rel := func(p string) string {
			r, err := filepath.Rel(w.Root(), p)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		got := []string{rel(dir), rel(source), rel(log), url}
		want := []string{tc.dir, tc.source, tc.log, tc.wantURL}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("rerun %d paths (-want +got):\n%s", tc.rerun, diff)
		}
	}
	// Run 0 is the seed's own layout.
	testDir, _ := w.TestDir(b, "foo-x")
	logURL, _ := w.LogURL("https://ci.example.com", b, "foo-x")
	runDir, _ := w.RunDir(b, "foo-x", 0)
	runURL, _ := w.RunLogURL("https://ci.example.com", b, "foo-x", 0)
	if runDir != testDir || runURL != logURL {
		t.Errorf("run 0 is %s %s, want the test's own %s %s", runDir, runURL, testDir, logURL)
	}
}

func TestRunPathsRefuseBadInput(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	b := Build{Owner: "o", Repo: "r", Pull: 1, Number: 1}
	for name, call := range map[string]func() error{
		"negative_rerun": func() error { _, err := w.RunDir(b, "t", -1); return err },
		"bad_name":       func() error { _, err := w.RunLogPath(b, "../t", 1); return err },
		"reserved_name":  func() error { _, err := w.CreateRunDir(b, "source", 1); return err },
		"bad_build_url":  func() error { _, err := w.RunLogURL("https://ci", Build{Owner: "o", Repo: "r"}, "t", 1); return err },
		"negative_url":   func() error { _, err := w.RunLogURL("https://ci", b, "t", -2); return err },
	} {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestCreateRunDirRefusesASymlinkedTestDirectory(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	outside := t.TempDir()
	b := Build{Owner: "o", Repo: "r", Pull: 1, Number: 1}
	testDir, err := w.CreateTestDir(b, "t")
	if err != nil {
		t.Fatal(err)
	}
	// A test of the first run planted a link where the re-run goes.
	if err := os.Symlink(outside, filepath.Join(testDir, "rerun-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.CreateRunDir(b, "t", 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("CreateRunDir through a symlink = %v, want ErrInvalid", err)
	}
}

func TestCleanupKeepsABuildWithARecentRerun(t *testing.T) {
	t.Parallel()
	w := openWorkspace(t)
	now := time.Now()
	old := now.Add(-48 * time.Hour)
	rerun := Build{Owner: "o", Repo: "r", Pull: 1, Number: 1}
	stale := Build{Owner: "o", Repo: "r", Pull: 1, Number: 2}
	for _, b := range []Build{rerun, stale} {
		for k := range 2 {
			log, err := w.RunLogPath(b, "t", k)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, log, "log\n")
		}
		dir, err := w.BuildDir(b)
		if err != nil {
			t.Fatal(err)
		}
		age(t, dir, old)
	}
	// The re-run of build 1 wrote its log just now.
	log, err := w.RunLogPath(rerun, "t", 1)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, log, "log\nmore\n")
	rep, err := w.Cleanup(context.Background(), 24*time.Hour, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Build{stale}, rep.Builds); diff != "" {
		t.Errorf("removed builds (-want +got):\n%s", diff)
	}
	first, err := w.RunLogPath(rerun, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first); err != nil {
		t.Errorf("the first run's log of a re-run build is gone: %v", err)
	}
}
