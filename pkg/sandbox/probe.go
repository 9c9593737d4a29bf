package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// probeTimeout bounds the probe: bwrap starting "true" takes milliseconds.
const probeTimeout = 10 * time.Second

// Probe runs "true" in the sandbox once and returns an error naming the
// fix when that fails: a missing bubblewrap, user namespaces disabled by
// the kernel (kernel.unprivileged_userns_clone, user.max_user_namespaces,
// or an AppArmor policy on Ubuntu 24.04 and later), or an env without
// --ignore-signal (coreutils before 8.31).
func (b *Bwrap) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	truePath, err := b.LookPath("true")
	if err != nil {
		return fmt.Errorf("probing the sandbox: %w", err)
	}
	cmd := exec.CommandContext(ctx, truePath)
	cmd.Dir = "/"
	done, err := b.Confine(cmd, nil, nil)
	if err != nil {
		return fmt.Errorf("probing the sandbox: %w", err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ranErr := done(); err == nil {
		err = ranErr
	}
	if err != nil {
		msg := strings.TrimSpace(out.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("bubblewrap does not work here (%s): install the bubblewrap package and allow "+
			"unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 and "+
			"user.max_user_namespaces=10000, see deploy/sysctl.d/yourci.conf), or run with -sandbox none", msg)
	}
	return nil
}
