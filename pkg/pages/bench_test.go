package pages

import (
	"fmt"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// BenchmarkBuildPage renders the page and state of a 100-test build with
// three attempts each, as the worker does at every change of a test.
func BenchmarkBuildPage(b *testing.B) {
	rec := events.BuildRecord{Key: events.BuildKey{Repo: repo, Pull: 1, Build: 1}, SHA: "abc", Updated: t0}
	for i := range 100 {
		rec.Tests = append(rec.Tests, events.TestRecord{Name: fmt.Sprintf("test-%d", i), State: events.TestPassed,
			Attempts: []events.AttemptRecord{attempt(1, 0, 1, "failed"), attempt(2, 2, 1, "failed"), attempt(3, 4, 1, "passed")}})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildPage(rec, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := BuildJSON(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRepoPage renders a repository page from 100 builds of 20 tests.
func BenchmarkRepoPage(b *testing.B) {
	var recent []events.BuildRecord
	for i := range 100 {
		rec := record(running)
		rec.Key.Pull, rec.Updated = i%30+1, t0.Add(time.Duration(i)*time.Minute)
		recent = append(recent, rec)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := RepoPage(repo, recent, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBoxPage renders the box page from the latest builds of 200 open
// pulls across 10 repositories, each with a running and a queued test.
func BenchmarkBoxPage(b *testing.B) {
	var builds []events.BuildRecord
	for i := range 200 {
		rec := record(running)
		rec.Key = events.BuildKey{Repo: events.Repo{Owner: "acme", Name: fmt.Sprintf("repo-%d", i%10)}, Pull: i + 1, Build: 1}
		rec.Tests = append(rec.Tests, events.TestRecord{Name: "queued", State: events.TestQueued})
		builds = append(builds, rec)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BoxPage(builds, t0); err != nil {
			b.Fatal(err)
		}
	}
}
