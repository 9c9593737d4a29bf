// Command receiver takes GitHub pull_request and merge_group webhooks (and
// comment commands and re-run buttons), verifies their signature and
// queues a build on JetStream before answering GitHub. See -h for its
// flags and environment.
package main

import (
	"context"
	"github.com/yourci/yourci/pkg/limits"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/yourci/yourci/pkg/envflag"
)

// memoryHeadroom is what the receiver's soft memory limit allows beyond
// the delivery bodies in flight: the runtime, connections, and the
// embedded JetStream when it runs here.
const memoryHeadroom = 64 << 20

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// run is the whole command; its result is the exit status: 0 after a clean
// shutdown (or -h), 1 when serving failed, 2 for bad usage or configuration.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	opts, err := parseOptions(args, getenv, stderr)
	if exit, ok := envflag.Settle("receiver", err, opts.Version, opts.Validate, os.Stdout, stderr); !ok {
		return exit
	}
	log := envflag.NewLogger(opts.JSONLog, opts.LogLevel, stderr)
	limits.ProtectService(log)
	if getenv("GOMEMLIMIT") == "" {
		// Bodies refused mid-flight leave garbage behind: collect it
		// before the heap grows to twice what deliveries hold.
		debug.SetMemoryLimit(opts.MaxInflightBytes + memoryHeadroom)
	}
	r, err := New(ctx, opts, log)
	if err != nil {
		log.Error("starting receiver", "err", err)
		return 1
	}
	defer r.Close()
	if err := r.Run(ctx); err != nil {
		log.Error("receiver stopped", "err", err)
		return 1
	}
	return 0
}
