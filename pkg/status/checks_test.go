package status_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/status"
)

// fakeChecks is an in-memory checks API that records each call.
type fakeChecks struct {
	mu    sync.Mutex
	runs  []*github.CheckRun
	calls []string
}

func (f *fakeChecks) CreateCheckRun(_ context.Context, _, _ string, o github.CreateCheckRunOptions) (*github.CheckRun, *github.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	run := &github.CheckRun{ID: github.Ptr(int64(len(f.runs) + 1)), Name: &o.Name, HeadSHA: &o.HeadSHA, ExternalID: o.ExternalID,
		DetailsURL: o.DetailsURL, Status: o.Status, Conclusion: o.Conclusion, Output: o.Output}
	f.runs = append(f.runs, run)
	f.calls = append(f.calls, "create "+o.Name+" "+o.GetStatus())
	return run, &github.Response{Response: &http.Response{StatusCode: http.StatusCreated}}, nil
}

func (f *fakeChecks) UpdateCheckRun(_ context.Context, _, _ string, id int64, o github.UpdateCheckRunOptions) (*github.CheckRun, *github.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	run := f.runs[id-1]
	run.Status, run.Conclusion, run.Output = o.Status, o.Conclusion, o.Output
	f.calls = append(f.calls, "update "+o.Name+" "+o.GetStatus()+" "+o.GetConclusion())
	return run, &github.Response{Response: &http.Response{StatusCode: http.StatusOK}}, nil
}

func (f *fakeChecks) ListCheckRunsForRef(_ context.Context, _, _, ref string, o *github.ListCheckRunsOptions) (*github.ListCheckRunsResults, *github.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "list "+o.GetCheckName())
	var out []*github.CheckRun
	for _, r := range f.runs {
		if r.GetHeadSHA() == ref && r.GetName() == o.GetCheckName() {
			out = append(out, r)
		}
	}
	return &github.ListCheckRunsResults{Total: github.Ptr(len(out)), CheckRuns: out}, &github.Response{Response: &http.Response{StatusCode: http.StatusOK}}, nil
}

func TestCheckRunWriter(t *testing.T) {
	t.Parallel()
	fake := &fakeChecks{}
	base := status.Status{Owner: "o", Repo: "r", SHA: "abc", Pull: 7, Build: 2, Test: "unit", TargetURL: "https://ci/log"}
	set := func(w status.CheckRunWriter, change func(*status.Status)) {
		t.Helper()
		s := base
		change(&s)
		if err := status.NewReporterFor(w, quietReporter(t)).Set(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	box1 := status.CheckRunWriter{Client: fake, IDs: status.NewCheckRunIDs()}
	box2 := status.CheckRunWriter{Client: fake, IDs: status.NewCheckRunIDs()}
	set(box1, func(s *status.Status) { s.State, s.Description, s.New = status.Pending, "queued", true })
	set(box2, func(s *status.Status) { s.State, s.Description, s.Started = status.Pending, "running", true })
	set(box2, func(s *status.Status) {
		s.State, s.Description, s.Conclusion = status.Failure, "timed out", status.ConclusionTimedOut
		s.Output = &status.Output{Title: "timed out", Summary: "**timed out**", Text: "last lines"}
	})
	set(box1, func(s *status.Status) { s.Build, s.State, s.Description, s.New = 3, status.Pending, "queued", true })

	want := []string{
		"create yci/unit queued",              // New: no lookup
		"list yci/unit",                       // another box: found by external_id
		"update yci/unit in_progress ",        //
		"update yci/unit completed timed_out", // known now: no lookup
		"create yci/unit queued",              // build 3 is another check run
	}
	if diff := cmp.Diff(want, fake.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	run := fake.runs[0]
	id, err := status.ParseExternalID(run.GetExternalID())
	wantID := status.ExternalID{Owner: "o", Repo: "r", Pull: 7, SHA: "abc", Build: 2, Test: "unit"}
	if err != nil || id != wantID {
		t.Errorf("external_id %q reads %+v, %v; want %+v", run.GetExternalID(), id, err, wantID)
	}
	if run.GetDetailsURL() != "https://ci/log" || run.GetOutput().GetText() != "last lines" {
		t.Errorf("check run %+v", run)
	}
}

func TestCheckRunConclusions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		state      status.State
		started    bool
		conclusion status.Conclusion
		want       string
	}{
		{"queued", status.Pending, false, "", "queued "},
		{"running", status.Pending, true, "", "in_progress "},
		{"passed", status.Success, false, "", "completed success"},
		{"failed", status.Failure, false, "", "completed failure"},
		{"error shows as failure", status.Error, false, "", "completed failure"},
		{"timed out", status.Failure, false, status.ConclusionTimedOut, "completed timed_out"},
		{"superseded", status.Error, false, status.ConclusionCancelled, "completed cancelled"},
		{"neutral", status.Error, false, status.ConclusionNeutral, "completed neutral"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeChecks{}
			w := status.CheckRunWriter{Client: fake, IDs: status.NewCheckRunIDs()}
			err := status.NewReporterFor(w, quietReporter(t)).Set(t.Context(), status.Status{Owner: "o", Repo: "r", SHA: "abc",
				Pull: 1, Test: "t", New: true, State: tt.state, Started: tt.started, Conclusion: tt.conclusion, Description: "d"})
			if err != nil {
				t.Fatal(err)
			}
			if got := fake.runs[0].GetStatus() + " " + fake.runs[0].GetConclusion(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	err := status.NewReporterFor(status.CheckRunWriter{Client: &fakeChecks{}, IDs: status.NewCheckRunIDs()}).Set(t.Context(),
		status.Status{Owner: "o", Repo: "r", SHA: "abc", State: status.Error, Conclusion: "great"})
	if !errors.Is(err, status.ErrInvalid) {
		t.Errorf("unknown conclusion: %v, want ErrInvalid", err)
	}
}

func TestCheckRunOutputIsMaskedAndFitsGitHubsLimits(t *testing.T) {
	t.Parallel()
	fake := &fakeChecks{}
	w := status.CheckRunWriter{Client: fake, IDs: status.NewCheckRunIDs()}
	secret := "s3cr3t-token"
	text := "first line\n" + strings.Repeat("é", 70000) + "\nlast line with " + secret
	err := status.NewReporterFor(w, status.WithSecrets(secret), quietReporter(t)).Set(t.Context(), status.Status{
		Owner: "o", Repo: "r", SHA: "abc", Pull: 1, Test: "t", New: true, State: status.Failure, Description: "failed",
		Output: &status.Output{Title: "failed\nwith " + secret, Summary: strings.Repeat("x", 70000), Text: text},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := fake.runs[0].GetOutput()
	if n := utf8.RuneCountInString(out.GetText()); n > status.MaxOutputText || !strings.HasSuffix(out.GetText(), "last line with ***") {
		t.Errorf("text of %d characters ends %q: want the log's end, masked, within the limit", n, out.GetText()[len(out.GetText())-30:])
	}
	if n := utf8.RuneCountInString(out.GetSummary()); n > status.MaxOutputText {
		t.Errorf("summary of %d characters", n)
	}
	if out.GetTitle() != "failed with ***" {
		t.Errorf("title %q", out.GetTitle())
	}
}

func TestExternalID(t *testing.T) {
	t.Parallel()
	id := status.ExternalID{Owner: "acme", Repo: "widgets.go", Pull: 12, SHA: strings.Repeat("a", 40), Build: 3, Test: "odd:name"}
	got, err := status.ParseExternalID(id.String())
	if err != nil || got != id {
		t.Errorf("round trip of %q: %+v, %v", id.String(), got, err)
	}
	rerun := id
	rerun.Rerun = 2
	if got, err := status.ParseExternalID(rerun.String()); err != nil || got != rerun || !strings.Contains(rerun.String(), ":3.2:") {
		t.Errorf("round trip of re-run %q: %+v, %v", rerun.String(), got, err)
	}
	for _, bad := range []string{"", "ci:1:acme/w:1:abc:1:t", "yci:1:acme/w:1:abc:1.0:t", "yci:1:acme/w:1:abc:1.x:t", "yci:1:acme/w:1:abc:1.-2:t", "yci:1:acme/w:x:abc:1:t", "yci:1:acmew:1:abc:1:t", "yci:1:acme/w:1:abc"} {
		if _, err := status.ParseExternalID(bad); err == nil {
			t.Errorf("ParseExternalID(%q) accepted", bad)
		}
	}
	if _, err := status.ParseExternalID("other-app-42"); !errors.Is(err, status.ErrNotOurs) {
		t.Errorf("another App's id: %v, want ErrNotOurs", err)
	}
}

func FuzzParseExternalID(f *testing.F) {
	f.Add("yci:1:acme/widgets:12:abc:3:unit")
	f.Add("yci:1:a/b:1::0:")
	f.Add("yci:1:acme/widgets:12:abc:3.2:unit")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := status.ParseExternalID(s)
		if err != nil {
			return
		}
		again, err := status.ParseExternalID(id.String())
		if err != nil || again != id {
			t.Errorf("%q reads %+v, which writes %q and reads back %+v, %v", s, id, id.String(), again, err)
		}
	})
}

// quietReporter sends a Reporter's log to the test's output.
func quietReporter(t *testing.T) status.Option {
	return status.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil)))
}
