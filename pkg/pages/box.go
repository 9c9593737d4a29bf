package pages

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// boxPage is index.html at the workspace root. Links are relative to it.
var boxPage = parsePage("box", `YourCI: {{len .Live}} tests queued or running`, `<h1>YourCI</h1>
<h2>Queued and running now</h2>
{{- if .Live}}
<table>
<thead><tr><th>Repository</th><th>Pull</th><th>Build</th><th>Test</th><th>State</th><th>Attempt</th><th>Since</th><th>Log</th></tr></thead>
<tbody>
{{- range .Live}}
<tr>
<td><a href="{{.Repo.Owner}}/{{.Repo.Name}}/index.html">{{.Repo.FullName}}</a></td>
<td>{{if .PullLink}}<a href="{{.PullLink}}">{{pull .Key.Pull}}</a>{{else}}{{pull .Key.Pull}}{{end}}{{if .Title}} {{.Title}}{{end}}</td>
<td><a href="{{.Repo.Owner}}/{{.Repo.Name}}/pulls/{{.Key.Pull}}/{{.Key.Build}}/index.html">build {{.Key.Build}}</a></td>
<td><code>{{.Test}}</code></td>
<td><span class="{{.State}}">{{.State}}</span></td>
<td>{{if .Attempt}}{{.Attempt}}{{else}}–{{end}}{{if .MaxAttempts}} of {{.MaxAttempts}}{{end}}</td>
<td>{{time .Since}}</td>
<td>{{if .Log}}<a href="{{.Log}}">out.txt</a>{{else}}–{{end}}</td>
</tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>Nothing is queued or running.</p>
{{- end}}
{{- if .Shares}}
<h2>Test slots by repository</h2>
<p class="note">A free test slot, on any box, goes to the repository in place 1: the one running fewest tests for its weight. A repository at its cap waits until one of its tests ends.</p>
<table>
<thead><tr><th>Place</th><th>Repository</th><th>Jobs stored</th><th>Running</th><th>Cap</th><th>Weight</th></tr></thead>
<tbody>
{{- range .Shares}}
<tr>
<td>{{if .Place}}{{.Place}}{{else}}at cap{{end}}</td>
<td><a href="{{.Repo.Owner}}/{{.Repo.Name}}/index.html">{{.Repo.FullName}}</a></td>
<td>{{.Stored}}</td>
<td>{{.Held}}</td>
<td>{{if .Limit.MaxRunning}}{{.Limit.MaxRunning}}{{else}}–{{end}}</td>
<td>{{if gt .Limit.Weight 1}}{{.Limit.Weight}}{{else}}1{{end}}</td>
</tr>
{{- end}}
</tbody>
</table>
{{- end}}
<h2>Repositories with open pull requests</h2>
{{- if .Repos}}
<table>
<thead><tr><th>Repository</th><th>Open pulls</th><th>Pending</th><th>Failing</th><th>Updated</th></tr></thead>
<tbody>
{{- range .Repos}}
<tr>
<td><a href="{{.Repo.Owner}}/{{.Repo.Name}}/index.html">{{.Repo.FullName}}</a></td>
<td>{{.Open}}</td>
<td>{{.Pending}}</td>
<td>{{.Failing}}</td>
<td>{{time .Updated}}</td>
</tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>No open pull request has a build.</p>
{{- end}}
<p class="note">Updated {{time .Updated}}. Every box shows the same builds; a build's page is served by the boxes that ran its tests, a running test's log by the box running it.</p>
</body>
</html>
`)

type boxView struct {
	Live    []liveTest
	Shares  []events.RepoShare
	Repos   []repoCount
	Updated time.Time
}

// liveTest is one queued, running or retrying test of an open pull's
// latest build.
type liveTest struct {
	Repo  events.Repo
	Key   events.BuildKey
	Title string
	// PullLink is the pull request's page on GitHub, "" when the record
	// has none fit to link.
	PullLink    string
	Test        string
	State       events.TestState
	Attempt     int
	MaxAttempts int
	Since       time.Time
	Log         string
}

type repoCount struct {
	Repo                   events.Repo
	Open, Pending, Failing int
	Updated                time.Time
}

// liveOrder puts running tests first, then those waiting to retry, then
// queued ones.
var liveOrder = map[events.TestState]int{events.TestRunning: 0, events.TestRetrying: 1, events.TestQueued: 2}

// BoxPage renders the box's page, index.html at the workspace root, from
// builds: the records the caller knows of, in any order. Only the latest
// build of each open pull request counts: its queued, running and retrying
// tests are listed (the oldest first within each state), and its
// repository with how many open pulls it has, how many are pending and how
// many failing. now is the time the page shows as its update. shares,
// when given (events.Board.Shares), list each repository's place in the
// order test slots are given out, in the order given.
func BoxPage(builds []events.BuildRecord, now time.Time, shares ...events.RepoShare) ([]byte, error) {
	v := boxView{Updated: now, Shares: shares}
	repos := map[events.Repo]*repoCount{}
	for _, rec := range latestOpen(builds) {
		r := repos[rec.Key.Repo]
		if r == nil {
			r = &repoCount{Repo: rec.Key.Repo}
			repos[rec.Key.Repo] = r
		}
		r.Open++
		switch sum := Summarize(rec); {
		case sum.State == Pending:
			r.Pending++
		case sum.State == Failure, sum.State == Error && !sum.Cancelled:
			r.Failing++
		}
		if rec.Updated.After(r.Updated) {
			r.Updated = rec.Updated
		}
		for _, t := range rec.Tests {
			if t.State.Final() {
				continue
			}
			lt := liveTest{Repo: rec.Key.Repo, Key: rec.Key, Title: rec.Title, PullLink: rec.PullLink(), Test: t.Name, State: t.State,
				MaxAttempts: t.MaxAttempts, Since: t.Updated, Log: t.LogURL}
			if a := t.Latest(); a != nil {
				lt.Attempt = a.Number
			}
			if lt.Since.IsZero() {
				lt.Since = rec.Updated
			}
			v.Live = append(v.Live, lt)
		}
	}
	for _, r := range repos {
		v.Repos = append(v.Repos, *r)
	}
	slices.SortFunc(v.Repos, func(a, b repoCount) int { return cmp.Compare(a.Repo.FullName(), b.Repo.FullName()) })
	slices.SortFunc(v.Live, func(a, b liveTest) int {
		return cmp.Or(cmp.Compare(liveOrder[a.State], liveOrder[b.State]), a.Since.Compare(b.Since),
			cmp.Compare(a.Repo.FullName(), b.Repo.FullName()), cmp.Compare(a.Key.Pull, b.Key.Pull), cmp.Compare(a.Test, b.Test))
	})
	var buf bytes.Buffer
	if err := boxPage.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("rendering the box page: %w", err)
	}
	return buf.Bytes(), nil
}

// latestOpen returns the latest build of each pull request among builds,
// leaving out pulls whose latest build is marked closed.
func latestOpen(builds []events.BuildRecord) []events.BuildRecord {
	type pull struct {
		repo   events.Repo
		number int
	}
	latest := map[pull]events.BuildRecord{}
	for _, rec := range builds {
		p := pull{rec.Key.Repo, rec.Key.Pull}
		if cur, ok := latest[p]; !ok || rec.Key.Build > cur.Key.Build {
			latest[p] = rec
		}
	}
	var out []events.BuildRecord
	for _, rec := range latest {
		if !rec.Closed {
			out = append(out, rec)
		}
	}
	return out
}
