// Command worker consumes YourCI's handle_pull and handle_test work from
// JetStream and runs tests in its workspace, the directory it runs in; with
// -local it runs a checkout's .yci.py matrix on this machine and exits.
package main

import (
	"context"
	"github.com/yourci/yourci/pkg/limits"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/yourci/yourci/pkg/envflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
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
