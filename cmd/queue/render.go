package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// render writes the snapshot as a table, one job per line, then the
// backlog, then each repository's share of test slots, for people: ages
// rounded to the second, commits to 7 digits.
func render(w io.Writer, snap events.Snapshot, backlog []events.ConsumerBacklog, shares []events.RepoShare) error {
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tREPOSITORY\tPULL\tCOMMIT\tBUILD\tTEST\tATTEMPT\tAGE\tWHO/WHEN")
	for _, e := range snap.Entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.State, e.Repo.FullName(), pull(e.Number), short(e.HeadSHA),
			orDash(e.Build), orDashString(e.Test), orDash(e.Attempt), age(snap.Taken.Sub(e.Since)), note(e, snap.Taken))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeTable(w, table.String()); err != nil {
		return err
	}
	if len(snap.Entries) == 0 {
		fmt.Fprintln(w, "(nothing queued or running)")
	}
	if snap.Truncated {
		fmt.Fprintln(w, "(more jobs are queued than -limit lists)")
	}
	for _, b := range backlog {
		fmt.Fprintf(w, "%s: %d waiting for a worker, %d taken and not done (%d of them redelivered)\n",
			b.Consumer, b.Pending, b.AckPending, b.Redelivered)
	}
	if len(shares) == 0 {
		return nil
	}
	return writeTable(w, renderShares(shares))
}

// renderShares is the table of repositories' places.
func renderShares(shares []events.RepoShare) string {
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PLACE\tREPOSITORY\tSTORED\tRUNNING\tCAP\tWEIGHT")
	for _, s := range shares {
		place := strconv.Itoa(s.Place)
		if s.Place == 0 {
			place = "at cap"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\n", place, s.Repo.FullName(), s.Stored, s.Held,
			orDash(s.Limit.MaxRunning), max(s.Limit.Weight, 1))
	}
	tw.Flush() // writes to a strings.Builder, which cannot fail
	return table.String()
}

// writeTable writes a tabwriter's table without trailing blanks.
func writeTable(w io.Writer, table string) error {
	for line := range strings.Lines(table) {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " \n")); err != nil {
			return err
		}
	}
	return nil
}

func note(e events.Entry, now time.Time) string {
	switch e.State {
	case events.Running:
		return e.Worker
	case events.RetryWait:
		return "retry in " + age(e.NotBefore.Sub(now))
	}
	return ""
}

// pull is the PULL column: the pull request's number, or "merge group
// 1a2b3c4d5" for a merge group's build (events.DescribePull).
func pull(n int) string {
	if events.IsGroup(n) {
		return events.DescribePull(n)
	}
	return strconv.Itoa(n)
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func orDash(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func orDashString(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age is d to the second; a clock a little behind the server's gives 0s.
func age(d time.Duration) string {
	return max(d, 0).Round(time.Second).String()
}
