package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// changeConfig picks tests by the changed files, as the README shows: the
// docs test for docs, the unit test for code, and says what it saw.
const changeConfig = `import os
from yci.changes import changed_files
from yci.run import Bash

def test_generator(build_id, pull):
    files = changed_files()
    assert files == sorted(files, key=os.fsencode), files
    files.append('not/kept')  # a copy: the next call is unchanged
    files = changed_files()
    seen = {'COUNT': str(len(files)), 'FIRST': files[0] if files else '',
            'RAW': ','.join(os.fsencode(f).hex() for f in files[:4])}
    if any(f.startswith('docs/') for f in files):
        yield Bash('make docs', name='docs', env=seen)
    if any(f.endswith('.py') for f in files):
        yield Bash('pytest', name='unit', env=seen)
`

func TestEvaluateChange(t *testing.T) {
	t.Parallel()
	hexOf := func(names ...string) string {
		var parts []string
		for _, n := range names {
			parts = append(parts, hexString(n))
		}
		return strings.Join(parts, ",")
	}
	many := make([]string, 20000)
	for i := range many {
		many[i] = "docs/page" + strconv.Itoa(100000+i) + ".md"
	}
	for _, tc := range []struct {
		name   string
		change *Change
		want   []string // test names
		env    map[string]string
	}{
		{name: "docs_only_runs_the_docs_test", change: &Change{Files: []string{"docs/index.md"}},
			want: []string{"docs"}, env: map[string]string{"COUNT": "1", "FIRST": "docs/index.md", "RAW": hexOf("docs/index.md")}},
		{name: "code_runs_the_unit_test", change: &Change{Files: []string{"lib/a.py", "lib/b.py"}},
			want: []string{"unit"}, env: map[string]string{"COUNT": "2", "FIRST": "lib/a.py", "RAW": hexOf("lib/a.py", "lib/b.py")}},
		{name: "nothing_changed_yields_nothing", change: &Change{}, want: nil},
		{name: "odd_names_reach_python_byte_for_byte",
			change: &Change{Files: []string{"-rf", "caf\xe9.py", "docs/a\nb", "x y.py"}},
			want:   []string{"docs", "unit"},
			env:    map[string]string{"COUNT": "4", "FIRST": "-rf", "RAW": hexOf("-rf", "caf\xe9.py", "docs/a\nb", "x y.py")}},
		{name: "twenty_thousand_files", change: &Change{Files: many}, want: []string{"docs"},
			env: map[string]string{"COUNT": "20000", "FIRST": many[0], "RAW": hexOf(many[:4]...)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(changeConfig), 0o644); err != nil {
				t.Fatal(err)
			}
			e := Evaluator{Python: evalPython()}
			got, err := e.EvaluateChange(context.Background(), dir, 1, evalPull(t), tc.change)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, test := range got {
				names = append(names, test.Name)
				if diff := cmp.Diff(tc.env, test.Env); diff != "" {
					t.Errorf("%s's env (-want +got):\n%s", test.Name, diff)
				}
			}
			if diff := cmp.Diff(tc.want, names); diff != "" {
				t.Errorf("tests (-want +got):\n%s", diff)
			}
		})
	}
}

func hexString(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

// TestEvaluateWithoutChangeSaysSo: a caller that does not know the change
// gets a clear error from changed_files(), not an empty list that would
// skip every test.
func TestEvaluateWithoutChangeSaysSo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(changeConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	e := Evaluator{Python: evalPython()}
	_, err := e.Evaluate(context.Background(), dir, 1, evalPull(t))
	var cerr *ConfigError
	if !errors.As(err, &cerr) || !strings.Contains(cerr.Error(), "did not say what changed") {
		t.Fatalf("got %v, want a *ConfigError saying the change is not known", err)
	}
}

// TestEvaluateEmptyMatrixIsNoTests: a matrix that yields nothing is a
// verdict (no tests for this change), not an error.
func TestEvaluateEmptyMatrixIsNoTests(t *testing.T) {
	t.Parallel()
	e := Evaluator{Python: evalPython()}
	got, err := e.EvaluateChange(context.Background(), evalCheckout(t, "empty.py"), 1, evalPull(t), &Change{})
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want no tests and no error", got, err)
	}
}

// BenchmarkChangedFiles measures what changed_files() adds to an
// evaluation for a change of 10,000 paths: writing the list, python
// reading it, and a .yci.py that calls it and tests every path. Compare
// with_change against without_change (the same .yci.py not calling it).
//
//	go test -run '^$' -bench BenchmarkChangedFiles -benchtime 10x ./pkg/pipeline/
func BenchmarkChangedFiles(b *testing.B) {
	files := make([]string, 10000)
	for i := range files {
		files[i] = fmt.Sprintf("dir%03d/sub%02d/file%03d.txt", i/100, i/10%10, i%100)
	}
	const config = `from yci.changes import changed_files
from yci.run import Bash

def test_generator(build_id, pull):
    files = changed_files() if CALL else ['docs/x']
    if any(f.startswith('docs/') or f.endswith('.txt') for f in files):
        yield Bash('true', name='t')
`
	for _, bc := range []struct {
		name   string
		change *Change
	}{{"without_change", nil}, {"with_change", &Change{Files: files}}} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			call := "CALL = " + map[bool]string{true: "True", false: "False"}[bc.change != nil] + "\n"
			if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(call+config), 0o644); err != nil {
				b.Fatal(err)
			}
			e := Evaluator{Python: evalPython()}
			for b.Loop() {
				tests, err := e.EvaluateChange(b.Context(), dir, 1, nil, bc.change)
				if err != nil || len(tests) != 1 {
					b.Fatalf("got %v, %v", tests, err)
				}
			}
		})
	}
}
