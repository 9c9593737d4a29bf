package natsserver_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/yourci/yourci/pkg/natsserver"
)

func TestCredentialsFile(t *testing.T) {
	t.Parallel()
	t.Run("created_0600_in_a_0700_directory_and_reused", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "conf", "nats.credentials")
		first, err := natsserver.LoadOrCreateCredentials(path)
		if err != nil {
			t.Fatal(err)
		}
		if first.User != natsserver.CredentialsUser || len(first.Password) < 32 {
			t.Errorf("credentials %q/%d-char password: want user %q and a long password", first.User, len(first.Password), natsserver.CredentialsUser)
		}
		for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
			info, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Mode().Perm(); got != want {
				t.Errorf("%s has mode %04o, want %04o", p, got, want)
			}
		}
		again, err := natsserver.LoadOrCreateCredentials(path)
		if err != nil || again != first {
			t.Errorf("second load = %v, %v; want the same credentials", again, err)
		}
		if strings.Contains(first.String(), first.Password) {
			t.Errorf("String() shows the password: %s", first)
		}
	})
	t.Run("racing_creators_share_one_file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "nats.credentials")
		got := make([]natsserver.Credentials, 8)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() {
				c, err := natsserver.LoadOrCreateCredentials(path)
				if err != nil {
					t.Error(err)
				}
				got[i] = c
			})
		}
		wg.Wait()
		for _, c := range got[1:] {
			if c != got[0] {
				t.Fatalf("racing creators got different credentials")
			}
		}
		left, err := filepath.Glob(filepath.Join(filepath.Dir(path), ".credentials-*"))
		if err != nil || len(left) > 0 {
			t.Errorf("temporary files left behind: %v %v", left, err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, content string
			mode          os.FileMode
			want          string
		}{
			{"readable_by_the_group", "user=yourci\npassword=x\n", 0o640, "mode 0640: only its owner may read it (chmod 600"},
			{"readable_by_anyone", "user=yourci\npassword=x\n", 0o644, "chmod 600"},
			{"without_a_password", "user=yourci\n", 0o600, "needs a user= and a password= line"},
			{"garbled", "yourci s3cret\n", 0o600, "not key=value"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(t.TempDir(), "nats.credentials")
				if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.mode); err != nil { // past the umask
					t.Fatal(err)
				}
				_, err := natsserver.LoadOrCreateCredentials(path)
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
					t.Errorf("LoadOrCreateCredentials = %v, want an error naming the file and %q", err, tc.want)
				}
			})
		}
	})
}

// The embedded default refuses a client without the credentials and lets in
// one that has the file.
func TestLocalRequiresCredentials(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := freePort(t)
	creds := filepath.Join(t.TempDir(), "nats.credentials")
	opts := natsserver.LocalOptions{StoreDir: t.TempDir(), Port: port, CredentialsFile: creds, Logger: slog.New(slog.DiscardHandler)}
	url, srv, err := natsserver.Local(ctx, opts)
	if err != nil || srv == nil {
		t.Fatalf("Local = %v, %v: want a started server", srv, err)
	}
	defer srv.Shutdown()
	addr := "nats://127.0.0.1:" + strconv.Itoa(port)

	_, err = nats.Connect(addr, nats.Timeout(5*time.Second))
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connecting without credentials: %v, want %v", err, nats.ErrAuthorization)
	}
	_, err = nats.Connect(addr, nats.UserInfo(natsserver.CredentialsUser, "guessed"), nats.Timeout(5*time.Second))
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connecting with a wrong password: %v, want %v", err, nats.ErrAuthorization)
	}
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connecting with the file's credentials: %v", err)
	}
	nc.Close()

	// A second process joins with the file, and starts nothing.
	joined, again, err := natsserver.Local(ctx, opts)
	if err != nil || again != nil {
		t.Fatalf("joining: %v, %v", again, err)
	}
	if joined != url {
		t.Errorf("joined with %q, want the starter's URL", joined)
	}
	if u, err := natsserver.Join(port, creds); err != nil || u != url {
		t.Errorf("Join = %q, %v", u, err)
	}
	// Without the file, joining fails and says why.
	_, err = natsserver.Join(port, filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "credentials file") {
		t.Errorf("Join without the file = %v, want it to name the missing file", err)
	}
}

func TestJoinStartsNothing(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	_, err := natsserver.Join(port, filepath.Join(t.TempDir(), "nats.credentials"))
	if !errors.Is(err, natsserver.ErrNoLocal) || !strings.Contains(err.Error(), "NATS_URL") {
		t.Errorf("Join with nothing answering = %v, want ErrNoLocal and the fix", err)
	}
	if natsserver.Answering(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))) {
		t.Error("Join started a server")
	}
	if _, err := os.Stat(filepath.Join(t.TempDir(), "nats.credentials")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Join created credentials: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
