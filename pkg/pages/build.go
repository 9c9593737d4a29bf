package pages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// buildPage is pulls/<pr>/<build>/index.html. Links are relative, so the
// page works under any HTTP_ROOT (a secret first path segment included).
var buildPage = withPlan(parsePage("build", `{{.Repo}} {{pull .Key.Pull}} build {{.Key.Build}}: {{.Summary.Label}}`, `<h1><a href="../../../index.html">{{.Repo}}</a> {{pull .Key.Pull}} build {{.Key.Build}}</h1>
{{- if .Title}}
<p class="meta">{{.Title}}</p>
{{- end}}
<p class="meta">commit {{if .CommitLink}}<a id="commit-link" href="{{.CommitLink}}"><code>{{.SHA}}</code></a>{{else}}<code>{{.SHA}}</code>{{end}}{{if .Branch}} on branch <code>{{.Branch}}</code>{{end}}
{{- if .PullLink}} · <a id="pull-link" href="{{.PullLink}}">pull request #{{.Key.Pull}} on GitHub</a>{{end}}</p>
{{- if .BaseLine}}
<p id="base" class="meta">{{.BaseLine}}{{with .Base}}{{if .Conflicts}}: {{range $i, $p := .Conflicts}}{{if $i}}, {{end}}<code>{{$p}}</code>{{end}}{{end}}{{end}}</p>
{{- end}}
<p id="summary" class="summary {{.Summary.Label}}">{{.Summary.Label}}: {{.Summary.Description}}</p>
{{- with .Next}}
<p id="successor" class="meta">Replaced by <a href="../{{.Build}}/index.html">build {{.Build}}</a> of commit <code>{{short $.Summary.SupersededBy}}</code>.</p>
{{- end}}
<table>
<thead><tr><th>Test</th><th>State</th><th>Attempts</th><th>Time</th><th>Log</th></tr></thead>
<tbody>
{{- range .Tests}}
<tr id="test-{{.Name}}">
<td><code>{{.Name}}</code></td>
<td><span id="state-{{.Name}}" class="state {{.State}}">{{.State}}{{if .Flaky}} (flaky){{end}}</span><br><small id="desc-{{.Name}}">{{.Description}}</small></td>
<td id="attempts-{{.Name}}">{{.Count}}{{range .Lines}}<br><small>{{.}}</small>{{end}}</td>
<td id="time-{{.Name}}">{{.Time}}</td>
<td><a href="{{.Log}}">out.txt</a></td>
</tr>
{{- end}}
</tbody>
</table>
{{- template "plan" .}}
{{- range .Tests}}{{if .Live}}
<section data-tail="{{.Name}}/out.txt" data-test="{{.Name}}"{{if ne .State "running"}} hidden{{end}}>
<h2>Log of <code>{{.Name}}</code> (live)</h2>
<pre id="log-{{.Name}}"></pre>
</section>
{{- end}}{{end}}
<p class="note">Updated {{time .Updated}}. The worker rewrites this page whenever a test changes state{{if .Live}}; reload it to see the latest (with JavaScript on, states and running logs follow by themselves){{end}}.</p>
{{- if .Live}}
<script>{{script}}</script>
{{- end}}
</body>
</html>
`))

// buildView is what the build page shows of a record.
type buildView struct {
	events.BuildRecord
	Repo    string
	Summary Summary
	Tests   []testView
	// PullLink and CommitLink are the pull request's and the commit's
	// pages on GitHub, "" when the record has none fit to link.
	PullLink, CommitLink string
	// Next is the build that replaced this superseded one, nil when
	// there is none or it is not known.
	Next *events.BuildKey
	// Live says some test may still change, so the page follows it.
	Live bool
	// BaseLine says what was tested of the base branch (see BaseLine).
	BaseLine string
}

type testView struct {
	events.TestRecord
	Log string
	// Count is "attempts of most", Lines one line per attempt and Time
	// their total duration: the same text in the page and in build.json,
	// which the page's script shows as it changes.
	Count string
	Lines []string
	Time  string
	// Live says the test may still run: its section tails its log.
	Live bool
}

// attemptLine describes one attempt: "re-run 1 #2 failed in 3s", "#1
// started 2025-03-04 10:00:10 UTC".
func attemptLine(a events.AttemptRecord) string {
	var b strings.Builder
	if a.Rerun > 0 {
		fmt.Fprintf(&b, "re-run %d ", a.Rerun)
	}
	fmt.Fprintf(&b, "#%d ", a.Number)
	if a.Outcome != "" {
		b.WriteString(a.Outcome + " in " + formatDuration(a.Duration))
	} else {
		b.WriteString("started " + formatTime(a.Start))
	}
	return b.String()
}

// attemptCount is "attempts of most" while one run of the test's retries
// is all there is ("1 of 3"), "n runs" once it was re-run (each re-run has
// its own allowance of attempts, so "2 of 1" would read as an overrun),
// and "not run" for a test that ended before any attempt started.
func attemptCount(t events.TestRecord) string {
	n := len(t.Attempts)
	rerun := false
	for _, a := range t.Attempts {
		rerun = rerun || a.Rerun > 0
	}
	switch {
	case n == 0 && t.State.Final():
		return "not run"
	case rerun && n == 1:
		return "1 run"
	case rerun:
		return strconv.Itoa(n) + " runs"
	case t.MaxAttempts > 0:
		return strconv.Itoa(n) + " of " + strconv.Itoa(t.MaxAttempts)
	}
	return strconv.Itoa(n)
}

func viewOf(rec events.BuildRecord) buildView {
	v := buildView{BuildRecord: rec, Repo: rec.Key.Repo.FullName(), Summary: Summarize(rec),
		PullLink: rec.PullLink(), CommitLink: rec.CommitLink(), BaseLine: BaseLine(rec)}
	for _, t := range rec.Tests {
		tv := testView{TestRecord: t, Log: t.LogURL, Live: !t.State.Final(), Count: attemptCount(t), Time: "–"}
		if tv.Log == "" {
			tv.Log = t.Name + "/out.txt"
		}
		var total time.Duration
		for _, a := range t.Attempts {
			total += a.Duration
			tv.Lines = append(tv.Lines, attemptLine(a))
		}
		if total > 0 {
			tv.Time = formatDuration(total)
		}
		v.Live = v.Live || tv.Live
		v.Tests = append(v.Tests, tv)
	}
	return v
}

// BuildPage renders the HTML page of the build rec describes, to be
// served as pulls/<pr>/<build>/index.html beside its tests' directories.
// others are records of the same repository the caller has at hand (any
// order, rec itself may be among them): a superseded build links to its
// successor (see Successor) when it is among them.
func BuildPage(rec events.BuildRecord, others []events.BuildRecord) ([]byte, error) {
	v := viewOf(rec)
	if next, ok := Successor(rec, others); ok {
		v.Next = &next
	}
	var buf bytes.Buffer
	if err := buildPage.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("rendering page of build %s: %w", rec.Key, err)
	}
	return buf.Bytes(), nil
}

// buildState is build.json: what the page's script reads to follow the
// build without reloading.
type buildState struct {
	Repo    string      `json:"repo"`
	Pull    int         `json:"pull"`
	Build   int         `json:"build"`
	SHA     string      `json:"sha"`
	Summary summaryJSON `json:"summary"`
	Tests   []testState `json:"tests"`
	Updated time.Time   `json:"updated"`
}

// summaryJSON's State is the word the page shows (Summary.Label).
type summaryJSON struct {
	State       string `json:"state"`
	Description string `json:"description"`
}

type testState struct {
	Name        string                 `json:"name"`
	State       events.TestState       `json:"state"`
	Description string                 `json:"description"`
	Flaky       bool                   `json:"flaky"`
	Log         string                 `json:"log"`
	Attempts    []events.AttemptRecord `json:"attempts"`
	// AttemptCount, AttemptLines and Time are the page's text for the
	// attempts and time columns.
	AttemptCount string   `json:"attempt_count"`
	AttemptLines []string `json:"attempt_lines"`
	Time         string   `json:"time"`
}

// BuildJSON renders build.json, the build's state for the page's script
// (and for anyone who would rather read JSON than HTML).
func BuildJSON(rec events.BuildRecord) ([]byte, error) {
	v := viewOf(rec)
	st := buildState{Repo: v.Repo, Pull: rec.Key.Pull, Build: rec.Key.Build, SHA: rec.SHA, Updated: rec.Updated,
		Summary: summaryJSON{State: v.Summary.Label(), Description: v.Summary.Description}, Tests: []testState{}}
	for _, t := range v.Tests {
		st.Tests = append(st.Tests, testState{Name: t.Name, State: t.State, Description: t.Description,
			Flaky: t.Flaky, Log: t.Log, Attempts: t.Attempts, AttemptCount: t.Count, AttemptLines: t.Lines, Time: t.Time})
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding state of build %s: %w", rec.Key, err)
	}
	return append(data, '\n'), nil
}

// Successor finds, among others, the build that replaced rec: a later
// build of the same pull request whose head is the commit that superseded
// rec's tests (Summary.SupersededBy), the first such build when the commit
// was built more than once. ok is false when rec was not superseded or no
// such build is among others.
func Successor(rec events.BuildRecord, others []events.BuildRecord) (key events.BuildKey, ok bool) {
	by := Summarize(rec).SupersededBy
	if by == "" {
		return events.BuildKey{}, false
	}
	for _, o := range others {
		if o.Key.Repo != rec.Key.Repo || o.Key.Pull != rec.Key.Pull || o.Key.Build <= rec.Key.Build || o.SHA != by {
			continue
		}
		if !ok || o.Key.Build < key.Build {
			key, ok = o.Key, true
		}
	}
	return key, ok
}
