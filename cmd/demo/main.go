// Command demo brings up a whole YourCI on this machine with no credentials
// and no network: the GitHub stand-in with a sample repository, the real
// receiver and worker binaries around the embedded JetStream, and a log
// server. It opens a pull request using the seed's 2×2 matrix, pushes a new
// commit to it, and prints every status as GitHub would show it, with one
// log fetched over HTTP while its test runs.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/yourci/yourci/pkg/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "bin", "`DIR` holding the receiver and worker binaries (make build)")
	dir := fs.String("dir", "", "`DIR` for the demo's repositories, workspace and logs (default: a new temporary directory)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: demo [flags]\n\nRuns YourCI end to end on this machine against a GitHub stand-in.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.Line())
		return 0
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "yourci-demo-")
		if err != nil {
			fmt.Fprintln(stderr, "demo:", err)
			return 1
		}
		*dir = d
	}
	binDir, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	d := &demo{out: stdout, bin: binDir, dir: *dir, secret: randomHex()}
	if err := d.run(ctx); err != nil {
		fmt.Fprintf(stderr, "demo failed: %v\n(everything it wrote is in %s)\n", err, *dir)
		return 1
	}
	fmt.Fprintf(stdout, "\nEverything the demo wrote (workspace, logs, process output) is in %s\n", *dir)
	return 0
}

func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
