package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/localrun"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/sandbox"
)

// runLocal runs the matrix of the checkout at opts.Local and prints a
// summary; the exit status is 0 only when every test passed.
func runLocal(ctx context.Context, opts Options, stdout, stderr io.Writer) int {
	python, err := pipeline.ResolvePython(ctx, "python3")
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	places, err := localrun.Prepare(opts.Local, opts.Workspace)
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	box, err := opts.Sandbox.open(ctx, true, localShares(ctx, places))
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	lim, err := opts.Limits.open(true, opts.Jobs, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	evaluator := &pipeline.Evaluator{Printed: stdout}
	runner := &pipeline.Runner{LogLimit: opts.LogLimit, DefaultTimeout: opts.TestTimeout}
	if err := confine(ctx, box, lim, python, evaluator, runner); err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 1
	}
	if box == nil {
		fmt.Fprintln(stdout, "sandbox: none (tests run as you, seeing what you see; -sandbox bwrap confines them)")
	} else {
		fmt.Fprintf(stdout, "sandbox: bwrap (network %s; cache kept in %s)\n", opts.Sandbox.Network, places.Cache)
		if home, err := os.UserHomeDir(); err == nil {
			if note := settingsNote(home); note != "" {
				fmt.Fprintln(stdout, note)
			}
		}
	}
	fmt.Fprintf(stdout, "limits: %s\n", lim)
	pyNote := pythonNote(ctx, box, evaluator.Python)
	fmt.Fprintln(stdout, pyNote)
	report, err := localrun.Run(ctx, localrun.Options{
		Source:    opts.Local,
		Base:      opts.Base,
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
	fmt.Fprintln(stdout, pyNote)
	if !report.Passed() {
		return 1
	}
	return 0
}

// localShares gives the sandboxed tests of a local run what the service
// gives a repository's: the checkout's cache, kept between runs, and,
// read-only, the object directories their copies borrow from the user's
// repository, without which git in a copy reads no commit. The evaluation
// of .yci.py, which works in the checkout itself, gets neither.
func localShares(ctx context.Context, places localrun.Places) sharesFunc {
	var objects []string
	// Without a repository (the copies then get no .git), there is
	// nothing to borrow; localrun.Run says so.
	if repo, err := artifacts.ReadLocalRepo(ctx, places.Source); err == nil {
		objects = repo.ObjectDirs()
	}
	return func(dir string) (sandbox.Shares, bool, error) {
		rel, err := filepath.Rel(places.Builds, dir)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return sandbox.Shares{}, false, nil
		}
		return sandbox.Shares{Cache: places.Cache, Objects: objects}, true, nil
	}
}
