package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/yourci/yourci/pkg/version"
)

// Exit statuses every command shares before its own work begins.
const (
	ExitOK    = 0 // -h, -version, or the work done
	ExitUsage = 2 // a flag, variable or configuration that cannot be used
)

// Settle ends a command before its work when its flags say so: -h (parseErr
// wrapping flag.ErrHelp) and -version (which prints the version on stdout)
// exit ExitOK; a parse error, or a configuration validate refuses, exits
// ExitUsage with the reason on stderr, prefixed by the command's name. It
// reports ok when the command should go on to its work.
func Settle(name string, parseErr error, showVersion bool, validate func() error, stdout, stderr io.Writer) (exit int, ok bool) {
	switch {
	case errors.Is(parseErr, flag.ErrHelp):
		return ExitOK, false
	case parseErr != nil:
		fmt.Fprintf(stderr, "%s: %v\n", name, parseErr)
		return ExitUsage, false
	case showVersion:
		fmt.Fprintln(stdout, version.Line())
		return ExitOK, false
	}
	if err := validate(); err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n%v\n", name, err)
		return ExitUsage, false
	}
	return ExitOK, true
}
