// Command worker consumes YourCI's handle_pull and handle_test work from
// JetStream and runs tests in its workspace, the directory it runs in; with
// -local it runs a checkout's .yci.py matrix on this machine and exits.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/yourci/yourci/pkg/envflag"
	"github.com/yourci/yourci/pkg/limits"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	stopProfile := startCPUProfile(os.Getenv("YCI_CPUPROFILE"), os.Stderr)
	exit := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(exit)
}

// startCPUProfile writes a CPU profile of the whole run to path plus
// "."+pid (so that workers sharing one environment, as in the e2e burst,
// do not overwrite each other's) when path is set: an opt-in for
// measuring where a worker spends its CPU, never on by default. It
// returns what stops and flushes the profile; a profile that cannot be
// started is reported and the worker runs without it.
func startCPUProfile(path string, stderr io.Writer) (stop func()) {
	if path == "" {
		return func() {}
	}
	name := fmt.Sprintf("%s.%d", path, os.Getpid())
	f, err := os.Create(name)
	if err != nil {
		fmt.Fprintf(stderr, "worker: YCI_CPUPROFILE: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "worker: YCI_CPUPROFILE: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "worker: YCI_CPUPROFILE: %v\n", err)
		}
	}
}

// run is the whole command; its result is the exit status: 0 done, 1 a
// failure (or a failed local test), 2 bad usage or configuration.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, getenv, stderr)
	if exit, ok := envflag.Settle("worker", err, opts.Version, opts.Validate, stdout, stderr); !ok {
		return exit
	}
	log := envflag.NewLogger(opts.JSONLog, opts.LogLevel, stderr)
	if opts.Local != "" {
		return runLocal(ctx, opts, stdout, stderr)
	}
	limits.ProtectService(log)
	svc, err := NewService(ctx, opts, log)
	if err != nil {
		log.Error("starting worker", "err", err)
		return 1
	}
	defer svc.Close()
	if err := svc.Run(ctx); err != nil {
		log.Error("worker stopped", "err", err)
		return 1
	}
	return 0
}
