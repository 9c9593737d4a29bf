package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// -local -sandbox bwrap names at start the settings in HOME its tests will
// not see, and only those that exist (issue 15).
func TestSettingsNoteNamesWhatTestsWillNotSee(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files []string
		want  []string
	}{
		{"nothing_in_home_says_nothing", nil, nil},
		{"existing_files_named", []string{".gitconfig", ".config/go/env", ".npmrc"}, []string{"~/.gitconfig", "~/.config/go/env", "~/.npmrc"}},
		{"a_directory_is_not_a_setting", []string{".pip/pip.conf/x"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			files := map[string]string{}
			for _, f := range tt.files {
				files[f] = "x\n"
			}
			writeFiles(t, home, files)
			if diff := cmp.Diff(tt.want, hiddenSettings(home)); diff != "" {
				t.Errorf("hidden settings (-want +got):\n%s", diff)
			}
			note := settingsNote(home)
			if (note == "") != (len(tt.want) == 0) {
				t.Errorf("note %q for %v", note, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(note, w) {
					t.Errorf("note lacks %s: %q", w, note)
				}
			}
		})
	}
}

// -local says at start and after the summary which interpreter evaluated
// .yci.py and which python3 the tests got, as resolved paths with their
// versions, so that two Pythons cannot go unnoticed.
func TestLocalSaysWhichPythonRan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{".yci.py": "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('true', name='ok')\n"})
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"-local", dir, "-workspace", t.TempDir()}, env(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	line := regexp.MustCompile(`(?m)^python: \.yci\.py evaluated by (/\S+) \(Python 3\.\d+\.\d+\); tests' python3 is (/\S+).*\(Python 3\.\d+\.\d+\)$`)
	found := line.FindAllStringSubmatch(stdout.String(), -1)
	if len(found) != 2 {
		t.Fatalf("want the python line at start and after the summary, got %d:\n%s", len(found), stdout.String())
	}
	for _, p := range found[0][1:] {
		if _, err := os.Stat(p); err != nil || !filepath.IsAbs(p) {
			t.Errorf("named python %q is not a file: %v", p, err)
		}
	}
}
