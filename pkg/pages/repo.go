package pages

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// repoPage is <owner>/<repo>/index.html.
var repoPage = parsePage("repo", `{{.Repo}}: YourCI`, `<h1>{{.Repo}}</h1>
<h2>Open pull requests</h2>
{{- if .Pulls}}
<table>
<thead><tr><th>Pull</th><th>Title</th><th>Latest build</th><th>Commit</th><th>State</th><th>Updated</th></tr></thead>
<tbody>
{{- range .Pulls}}
<tr>
<td>{{if .PullLink}}<a href="{{.PullLink}}">{{pull .Key.Pull}}</a>{{else}}{{pull .Key.Pull}}{{end}}</td>
<td>{{.Title}}</td>
<td><a href="pulls/{{.Key.Pull}}/{{.Key.Build}}/index.html">build {{.Key.Build}}</a></td>
<td>{{if .CommitLink}}<a href="{{.CommitLink}}"><code>{{short .SHA}}</code></a>{{else}}<code>{{short .SHA}}</code>{{end}}</td>
<td><span class="{{.Summary.Label}}">{{.Summary.Label}}</span>: {{.Summary.Description}}</td>
<td>{{time .Updated}}</td>
</tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>None built recently.</p>
{{- end}}
{{- if .Closed}}
<h2>Recently closed</h2>
<table>
<thead><tr><th>Pull</th><th>Title</th><th>Last build</th><th>State</th><th>Updated</th></tr></thead>
<tbody>
{{- range .Closed}}
<tr>
<td>{{if .PullLink}}<a href="{{.PullLink}}">{{pull .Key.Pull}}</a>{{else}}{{pull .Key.Pull}}{{end}}</td>
<td>{{.Title}}</td>
<td><a href="pulls/{{.Key.Pull}}/{{.Key.Build}}/index.html">build {{.Key.Build}}</a></td>
<td><span class="{{.Summary.Label}}">{{.Summary.Label}}</span>: {{.Summary.Description}}</td>
<td>{{time .Updated}}</td>
</tr>
{{- end}}
</tbody>
</table>
{{- end}}
<h2>Tests that most often needed retries</h2>
<p class="meta">Over the last {{.Window}} builds of this repository.</p>
{{- if .Retried}}
<table>
<thead><tr><th>Test</th><th>Needed retries</th><th>Then passed (flaky)</th><th>Ran in</th><th>Last needed</th></tr></thead>
<tbody>
{{- range .Retried}}
<tr>
<td><code>{{.Name}}</code></td>
<td>{{.Retried}}</td>
<td class="flaky">{{.Flaky}}</td>
<td>{{.Builds}} builds</td>
<td><a href="pulls/{{.Last.Pull}}/{{.Last.Build}}/index.html">{{pull .Last.Pull}} build {{.Last.Build}}</a></td>
</tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>No test needed a retry.</p>
{{- end}}
<p class="note">Updated {{time .Updated}}.</p>
</body>
</html>
`)

type repoView struct {
	Repo  string
	Pulls []pullView
	// Closed are the pulls closed most recently, at most recentlyClosed.
	Closed  []pullView
	Retried []retriedTest
	Window  int
	Updated time.Time
}

type pullView struct {
	events.BuildRecord
	Summary Summary
	// PullLink and CommitLink are as in buildView.
	PullLink, CommitLink string
}

// retriedTest counts, for one test name, the builds in which it needed
// more than one attempt.
type retriedTest struct {
	Name    string
	Retried int // builds where it needed a retry
	Flaky   int // of those, builds where it then passed
	Builds  int // builds that ran it at all
	Last    events.BuildKey
	lastAt  time.Time
}

// recentlyClosed is how many closed pull requests a repository page lists,
// below the open ones.
const recentlyClosed = 10

// RepoPage renders the repository's page from recent, the records of its
// most recent builds (newest first, as events' RecentBuilds returns them):
// each open pull request with its latest build (a pull whose latest build
// is marked closed is listed apart, among the few most recently closed),
// and the tests that most often needed retries in those builds. now is the time the page shows as
// its update.
func RepoPage(repo events.Repo, recent []events.BuildRecord, now time.Time) ([]byte, error) {
	v := repoView{Repo: repo.FullName(), Window: len(recent), Updated: now}
	latest := map[int]events.BuildRecord{}
	retried := map[string]*retriedTest{}
	for _, rec := range recent {
		if cur, ok := latest[rec.Key.Pull]; !ok || rec.Key.Build > cur.Key.Build {
			latest[rec.Key.Pull] = rec
		}
		for _, t := range rec.Tests {
			r := retried[t.Name]
			if r == nil {
				r = &retriedTest{Name: t.Name}
				retried[t.Name] = r
			}
			r.Builds++
			if len(t.Attempts) < 2 {
				continue
			}
			r.Retried++
			if t.Flaky {
				r.Flaky++
			}
			if rec.Updated.After(r.lastAt) {
				r.Last, r.lastAt = rec.Key, rec.Updated
			}
		}
	}
	for _, rec := range latest {
		pv := pullView{BuildRecord: rec, Summary: Summarize(rec), PullLink: rec.PullLink(), CommitLink: rec.CommitLink()}
		if rec.Closed {
			v.Closed = append(v.Closed, pv)
		} else {
			v.Pulls = append(v.Pulls, pv)
		}
	}
	slices.SortFunc(v.Pulls, func(a, b pullView) int { return b.Key.Pull - a.Key.Pull })
	slices.SortFunc(v.Closed, func(a, b pullView) int { return cmp.Or(b.Updated.Compare(a.Updated), b.Key.Pull-a.Key.Pull) })
	v.Closed = v.Closed[:min(len(v.Closed), recentlyClosed)]
	for _, r := range retried {
		if r.Retried > 0 {
			v.Retried = append(v.Retried, *r)
		}
	}
	slices.SortFunc(v.Retried, func(a, b retriedTest) int {
		return cmp.Or(b.Retried-a.Retried, b.Flaky-a.Flaky, cmp.Compare(a.Name, b.Name))
	})
	var buf bytes.Buffer
	if err := repoPage.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("rendering page of %s: %w", repo.FullName(), err)
	}
	return buf.Bytes(), nil
}
