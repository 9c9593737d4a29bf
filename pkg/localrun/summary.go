package localrun

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteSummary prints one row per test: its result, the attempts it took,
// how long it ran (all attempts together, waits between them left out) and
// where its log is. A matrix that yielded nothing says so as the service's
// summary does, rather than as an empty table of 0 passed, 0 failed.
func (r Report) WriteSummary(w io.Writer) error {
	if len(r.Tests) == 0 {
		_, err := fmt.Fprintln(w, "no tests for this change: .yci.py yielded none")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TEST\tRESULT\tATTEMPTS\tDURATION\tLOG")
	passed := 0
	for _, t := range r.Tests {
		result := t.Final.Outcome.String()
		if t.Err != nil {
			result = "error: " + t.Err.Error()
		} else if t.Final.Outcome != 0 && t.Final.Reason != "" && !t.Passed() {
			result += " (" + t.Final.Reason + ")"
		}
		if t.Passed() {
			passed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", t.Test.Name, result,
			len(t.Attempts), t.Test.Retries+1, t.Duration().Round(time.Millisecond), t.Log)
	}
	fmt.Fprintf(tw, "\n%d passed, %d failed\n", passed, len(r.Tests)-passed)
	return tw.Flush()
}
