package natsserver

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// CredentialsUser is the user every YourCI process connects to the
// embedded JetStream as.
const CredentialsUser = "yourci"

// Credentials are the user and password the embedded JetStream requires.
// They live in a file only YourCI's user can read (see LoadOrCreateCredentials);
// a process gets them from that file, never from its environment or its
// command line, so a test cannot read them from /proc.
type Credentials struct {
	User     string
	Password string
}

// String masks the password, so that Credentials printed by mistake leak
// nothing.
func (c Credentials) String() string { return c.User + ":***" }

// URL is nats://user:password@addr. Print it only through events.Redact.
func (c Credentials) URL(addr string) string {
	return (&url.URL{Scheme: "nats", User: url.UserPassword(c.User, c.Password), Host: addr}).String()
}

// LoadOrCreateCredentials returns the credentials in the file at path,
// creating it first with a new random password when it does not exist. The
// file is created atomically (written under a temporary name, then linked
// into place), so processes racing to create it all end up with the one
// that won; its directory is created 0700 when missing. A file that anyone
// but its owner could read or write, or that another user owns, is refused.
func LoadOrCreateCredentials(path string) (Credentials, error) {
	c, err := ReadCredentials(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return c, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Credentials{}, fmt.Errorf("creating the directory of the NATS credentials: %w", err)
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return Credentials{}, fmt.Errorf("generating a NATS password: %w", err)
	}
	c = Credentials{User: CredentialsUser, Password: hex.EncodeToString(secret)}
	if err := createExclusive(path, c.encode()); err != nil && !errors.Is(err, fs.ErrExist) {
		return Credentials{}, err
	}
	// Whoever won the race, the file in place is the one every process
	// uses.
	return ReadCredentials(path)
}

// createExclusive writes data to a new 0600 file at path, failing with
// fs.ErrExist when one is already there. Readers never see it half written.
func createExclusive(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*") // mode 0600
	if err != nil {
		return fmt.Errorf("creating NATS credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if err := errors.Join(werr, tmp.Close()); err != nil {
		return fmt.Errorf("writing NATS credentials %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("creating NATS credentials %s: %w", path, err)
	}
	return nil
}

// ReadCredentials reads the credentials file at path, refusing one that
// anyone but its owner could read or write, or that another user owns. An
// error wraps fs.ErrNotExist when there is no file.
func ReadCredentials(path string) (Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("reading NATS credentials: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Credentials{}, fmt.Errorf("reading NATS credentials: %w", err)
	}
	if !info.Mode().IsRegular() {
		return Credentials{}, fmt.Errorf("NATS credentials %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return Credentials{}, fmt.Errorf("NATS credentials %s has mode %04o: only its owner may read it (chmod 600 %s)", path, perm, path)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return Credentials{}, fmt.Errorf("NATS credentials %s belongs to uid %d, not to this process's uid %d", path, st.Uid, os.Geteuid())
	}
	var data bytes.Buffer
	if _, err := data.ReadFrom(f); err != nil {
		return Credentials{}, fmt.Errorf("reading NATS credentials %s: %w", path, err)
	}
	c, err := decodeCredentials(data.Bytes())
	if err != nil {
		return Credentials{}, fmt.Errorf("NATS credentials %s: %w", path, err)
	}
	return c, nil
}

const credentialsHeader = "# YourCI's embedded JetStream: user and password. Keep this file mode 0600.\n"

func (c Credentials) encode() []byte {
	return []byte(credentialsHeader + "user=" + c.User + "\npassword=" + c.Password + "\n")
}

// decodeCredentials parses key=value lines; # starts a comment.
func decodeCredentials(data []byte) (Credentials, error) {
	var c Credentials
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		switch {
		case !ok:
			return Credentials{}, errors.New("a line is not key=value")
		case key == "user":
			c.User = value
		case key == "password":
			c.Password = value
		default:
			return Credentials{}, fmt.Errorf("unknown key %q", key)
		}
	}
	if err := sc.Err(); err != nil {
		return Credentials{}, err
	}
	if c.User == "" || c.Password == "" {
		return Credentials{}, errors.New("needs a user= and a password= line")
	}
	return c, nil
}
