// Command reconcile is YourCI's cron sweep: it queues a build of every open
// pull request's head commit that has none (the webhooks' safety net, and
// on its own enough to keep every pull request tested), repairs builds left
// pending, and with -cleanup-older-than removes old builds from a worker's
// workspace. See -h for its flags, environment and exit statuses.
package main

import (
	"context"
	"github.com/yourci/yourci/pkg/limits"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/yourci/yourci/pkg/envflag"
	"github.com/yourci/yourci/pkg/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole command; its result is the exit status documented in
// the usage text.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, getenv, stderr)
	if exit, ok := envflag.Settle("reconcile", err, opts.Version, opts.Validate, stdout, stderr); !ok {
		return exit
	}
	log := envflag.NewLogger(opts.JSONLog, opts.LogLevel, stderr)
	limits.ProtectService(log)
	r, err := Open(ctx, opts, log, stdout)
	if err != nil {
		log.Error("starting reconcile", "err", err)
		return exitFailed
	}
	defer r.Close()
	log.Info("reconcile started", "version", version.String(), "cleanup", opts.cleanup())
	err = r.Run(ctx)
	status := exitStatus(err)
	switch status {
	case exitOK:
	case exitLocked:
		log.Error("giving up: another sweep is running", "err", err)
	default:
		log.Error("reconcile did not finish everything", "err", err, "exit", status)
	}
	return status
}
