// Package pages renders YourCI's static HTML pages from build records: a
// build's page (pulls/<pr>/<build>/index.html, beside its tests' logs,
// with build.json for the live view) and a repository's page
// (<owner>/<repo>/index.html). Pages are plain HTML that reads fully with
// JavaScript off; one small inline script, allowed by its hash in the
// Content-Security-Policy that nginx sends (ContentSecurityPolicy), follows
// running tests' logs. Every string from GitHub or a test is escaped by
// html/template. The package writes nothing but what callers ask of it.
package pages

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

//go:embed tail.js
var tailScript string

//go:embed style.css
var styleSheet string

// ContentSecurityPolicy is the header value a page needs from the server,
// and no more: its own inline script and style (by hash), requests to its
// own origin (build.json, logs), nothing else. deploy/nginx/yourci.conf
// sends it for pages; a test keeps the two equal.
func ContentSecurityPolicy() string {
	return "default-src 'none'; script-src '" + hashOf(tailScript) + "'; style-src '" + hashOf(styleSheet) +
		"'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// funcs are the helpers the templates share.
var funcs = template.FuncMap{
	"duration": formatDuration,
	"time":     formatTime,
	"short":    shortSHA,
	// pull names a build's pull request ("#12") or merge group ("merge
	// group 1a2b3c4d5"), as events.DescribePull does everywhere.
	"pull": events.DescribePull,
	// The script and style are the package's own text, not data: they are
	// marked safe so that they are emitted byte for byte, as their hashes
	// in ContentSecurityPolicy require.
	"script": func() template.JS { return template.JS(tailScript) },
	"style":  func() template.CSS { return template.CSS(styleSheet) },
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// formatDuration writes d as people read a CI page: "850ms", "4.2s",
// "2m13s", "1h5m".
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return strings.TrimSuffix(d.Round(time.Second).String(), "0s")
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// parsePage parses the template of a page: the head every page shares,
// titled by the template title, then body, the template of what follows
// <body>.
func parsePage(name, title, body string) *template.Template {
	return template.Must(template.New(name).Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>` + title + `</title>
<style>{{style}}</style>
</head>
<body>
` + body))
}
