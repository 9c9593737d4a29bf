package projector

import (
	"fmt"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/events"
)

// summaryOf is the summary Project gives rec.
func summaryOf(t *testing.T, rec events.BuildRecord) State {
	t.Helper()
	states := Project(rec, "")
	sum := states[len(states)-1]
	if sum.Part != SummaryPart {
		t.Fatalf("last state is %q, want the summary", sum.Part)
	}
	return sum
}

// blocks returns the lines inside each fenced code block of md.
func blocks(t *testing.T, md string) [][]string {
	t.Helper()
	var out [][]string
	fence := ""
	for line := range strings.Lines(md) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case fence == "" && strings.HasPrefix(line, "```"):
			fence = line
			out = append(out, nil)
		case fence != "" && strings.HasPrefix(line, fence):
			fence = ""
		case fence != "":
			out[len(out)-1] = append(out[len(out)-1], line)
		}
	}
	if fence != "" {
		t.Fatalf("a code block is never closed:\n%s", md)
	}
	return out
}

func TestSummaryShowsThePlan(t *testing.T) {
	t.Parallel()
	planned := record(
		events.TestRecord{Name: "foo-x", State: events.TestQueued, MaxAttempts: 4, Command: "./test.sh"},
		events.TestRecord{Name: "lint", State: events.TestQueued, MaxAttempts: 1, Command: "make lint"},
	)
	planned.Changes = &events.Changes{Files: []string{"README.md", "pkg/a.go"}, Total: 130}
	tests := []struct {
		name  string
		rec   events.BuildRecord
		lines [][]string // the lines of each code block; nil: no plan at all
		notes []string   // what the text says besides
	}{
		{"tests with commands and attempts, then the changed files and how many more", planned,
			[][]string{
				{"foo-x  up to 4 attempts  ./test.sh", "lint   1 attempt         make lint"},
				{"README.md", "pkg/a.go"},
			},
			[]string{"**Tests** (2)", "**Changed files** (130)", "… and 128 more."}},
		{"changes without commands show the changed files alone",
			func() events.BuildRecord {
				r := record(events.TestRecord{Name: "unit", State: events.TestQueued})
				r.Changes = &events.Changes{Total: 0}
				return r
			}(),
			[][]string{}, []string{"**Changed files** (0)", "none"}},
		{"a record from before plans has no report beyond its description",
			record(events.TestRecord{Name: "unit", State: events.TestQueued, MaxAttempts: 2}), nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sum := summaryOf(t, tc.rec)
			if tc.lines == nil {
				if sum.Status.Output != nil {
					t.Fatalf("output %+v, want none", sum.Status.Output)
				}
				return
			}
			out := sum.Status.Output
			if out == nil {
				t.Fatal("the summary has no output: the plan is not shown")
			}
			if out.Title != sum.Status.Description || !strings.HasPrefix(out.Summary, sum.Status.Description+"\n\n") {
				t.Errorf("output %q / %q does not start with the description %q", out.Title, out.Summary, sum.Status.Description)
			}
			got := blocks(t, out.Summary)
			if fmt.Sprint(got) != fmt.Sprint(tc.lines) {
				t.Errorf("code blocks\n%q\nwant\n%q\nin:\n%s", got, tc.lines, out.Summary)
			}
			for _, n := range tc.notes {
				if !strings.Contains(out.Summary, n) {
					t.Errorf("summary lacks %q:\n%s", n, out.Summary)
				}
			}
		})
	}
}

func TestPlanKeepsAuthorTextInItsLine(t *testing.T) {
	t.Parallel()
	evil := "echo hi\n````\n@everyone <img src=x onerror=alert(1)> [x](javascript:alert(2))\r\x1b[31m\u202eexe.sh\xff"
	rec := record(
		events.TestRecord{Name: "evil", State: events.TestQueued, MaxAttempts: 1, Command: evil},
		events.TestRecord{Name: "good", State: events.TestQueued, MaxAttempts: 1, Command: "./ok.sh"},
	)
	rec.Changes = &events.Changes{Files: []string{"a\nb.go", "```"}, Total: 2}
	out := summaryOf(t, rec).Status.Output
	if out == nil {
		t.Fatal("no plan")
	}
	got := blocks(t, out.Summary)
	want := [][]string{
		{`evil  1 attempt         echo hi\n` + "````" + `\n@everyone <img src=x onerror=alert(1)> [x](javascript:alert(2))\r\x1b[31m\u202eexe.sh\xff`,
			"good  1 attempt         ./ok.sh"},
		{`a\nb.go`, "```"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("code blocks\n%q\nwant\n%q\nin:\n%s", got, want, out.Summary)
	}
	// Nothing author-controlled stands outside a code block.
	for _, bad := range []string{"@everyone", "<img", "javascript:"} {
		outside := out.Summary
		for _, b := range got {
			for _, l := range b {
				outside = strings.Replace(outside, l, "", 1)
			}
		}
		if strings.Contains(outside, bad) {
			t.Errorf("%q stands outside a code block:\n%s", bad, out.Summary)
		}
	}
}

func TestPlanIsBounded(t *testing.T) {
	t.Parallel()
	var tests []events.TestRecord
	for i := range 1000 {
		tests = append(tests, events.TestRecord{Name: fmt.Sprintf("test-%04d", i), State: events.TestQueued, MaxAttempts: 3,
			Command: events.RecordedCommand(strings.Repeat("x", 4000))})
	}
	rec := record(tests...)
	files := make([]string, events.MaxRecordedChanges)
	for i := range files {
		files[i] = fmt.Sprintf("%04d/%s", i, strings.Repeat("p", 4000))
	}
	rec.Changes = &events.Changes{Files: files, Total: 5000}
	out := summaryOf(t, rec).Status.Output
	if out == nil {
		t.Fatal("no plan")
	}
	if n := len(out.Summary); n > planBudget+200 {
		t.Errorf("summary is %d bytes, want at most about %d", n, planBudget)
	}
	got := blocks(t, out.Summary)
	if len(got) != 2 || len(got[0]) == 0 || len(got[1]) == 0 {
		t.Fatalf("want both blocks non-empty, got %d blocks:\n%.2000s", len(got), out.Summary)
	}
	for _, n := range []string{fmt.Sprintf("… and %d more (see the build page)", 1000-len(got[0])),
		fmt.Sprintf("… and %d more.", 5000-len(got[1]))} {
		if !strings.Contains(out.Summary, n) {
			t.Errorf("summary lacks %q", n)
		}
	}
}

func TestSummaryMarkFollowsThePlan(t *testing.T) {
	t.Parallel()
	old := record(events.TestRecord{Name: "unit", State: events.TestQueued, MaxAttempts: 2})
	if got, want := summaryOf(t, old).Mark, "pending|1 queued of 1|"; got != want {
		t.Errorf("a record without a plan is marked %q, want %q as before plans: its summary is not written again", got, want)
	}
	planned := record(events.TestRecord{Name: "unit", State: events.TestQueued, MaxAttempts: 2, Command: "./a.sh"})
	other := record(events.TestRecord{Name: "unit", State: events.TestQueued, MaxAttempts: 2, Command: "./b.sh"})
	if a, b := summaryOf(t, planned).Mark, summaryOf(t, other).Mark; a == b || a == summaryOf(t, old).Mark {
		t.Errorf("marks %q and %q: a changed plan must owe the summary again", a, b)
	}
}
