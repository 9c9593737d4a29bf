package pages

import (
	"html/template"
	"strconv"
)

// planSection is the build page's plan: what .yci.py decided to run, each
// test with its command and the attempts it may have, and the changed
// files it saw (the first events.MaxRecordedChanges, then a count). It is
// shown only for records that keep a plan. Commands and paths are
// author-controlled; html/template escapes them.
const planSection = `
{{- if .HasPlan}}
<section id="plan">
<h2>Plan</h2>
{{- if .HasCommands}}
<table id="plan-tests">
<thead><tr><th>Test</th><th>Attempts</th><th>Command</th></tr></thead>
<tbody>
{{- range .Tests}}
<tr id="plan-{{.Name}}"><td><code>{{.Name}}</code></td><td>{{allowed .MaxAttempts}}</td><td><pre>{{.Command}}</pre></td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- with .Changes}}
<h3>Changed files ({{.Total}})</h3>
{{- if .Files}}
<ul id="changes">
{{- range .Files}}
<li><code>{{.}}</code></li>
{{- end}}
</ul>
{{- else}}
<p id="changes">None.</p>
{{- end}}
{{- with $.MoreChanges}}
<p id="more-changes" class="meta">… and {{.}} more.</p>
{{- end}}
{{- end}}
</section>
{{- end}}`

// withPlan adds the plan section to the build page's template t.
func withPlan(t *template.Template) *template.Template {
	template.Must(t.New("plan").Funcs(template.FuncMap{"allowed": attemptsAllowed}).Parse(planSection))
	return t
}

// attemptsAllowed words a test's MaxAttempts: "1", "up to 3", or "" when
// the record does not say.
func attemptsAllowed(n int) string {
	switch {
	case n <= 0:
		return ""
	case n == 1:
		return "1"
	}
	return "up to " + strconv.Itoa(n)
}

// HasCommands says the record keeps its tests' commands.
func (v buildView) HasCommands() bool {
	for _, t := range v.BuildRecord.Tests {
		if t.Command != "" {
			return true
		}
	}
	return false
}

// HasPlan says the record keeps a plan to show: commands or changes.
func (v buildView) HasPlan() bool { return v.Changes != nil || v.HasCommands() }

// MoreChanges is how many changed paths the record counts but does not
// list.
func (v buildView) MoreChanges() int {
	if v.Changes == nil {
		return 0
	}
	return max(v.Changes.Total-len(v.Changes.Files), 0)
}
