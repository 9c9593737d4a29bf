package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/yourci/yourci/pkg/localrun"
	"github.com/yourci/yourci/pkg/pipeline"
)

// runLocal runs the matrix of the checkout at opts.Local and prints a
// summary; the exit status is 0 only when every test passed.
func runLocal(ctx context.Context, opts Options, stdout, stderr io.Writer) int {
	python, err := pipeline.ResolvePython(ctx, "python3")
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	box, err := opts.Sandbox.open(ctx, true, nil)
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	lim, err := opts.Limits.open(true, opts.Jobs, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	evaluator := &pipeline.Evaluator{}
	runner := &pipeline.Runner{LogLimit: opts.LogLimit, DefaultTimeout: opts.TestTimeout}
	if err := confine(ctx, box, lim, python, evaluator, runner); err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	if box == nil {
		fmt.Fprintln(stdout, "sandbox: none (tests run as you, seeing what you see; -sandbox bwrap confines them)")
	} else {
		fmt.Fprintf(stdout, "sandbox: bwrap (network %s)\n", opts.Sandbox.Network)
	}
	fmt.Fprintf(stdout, "limits: %s\n", lim)
	report, err := localrun.Run(ctx, localrun.Options{
		Source:    opts.Local,
		Workspace: opts.Workspace,
		Jobs:      opts.Jobs,
		Evaluator: evaluator,
		Runner:    runner,
		Progress:  stdout,
	})
	var cfgErr *pipeline.ConfigError
	if errors.As(err, &cfgErr) {
		fmt.Fprintln(stderr, cfgErr.Detail())
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nbuild %d in %s\n", report.Build, report.Dir)
	if err := report.WriteSummary(stdout); err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	if !report.Passed() {
		return 1
	}
	return 0
}
