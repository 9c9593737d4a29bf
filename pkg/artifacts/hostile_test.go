package artifacts

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCheckedOutAtRefusesWhatATestPlantedAsHEAD puts a link to a secret, a
// link to /dev/zero, a FIFO and a huge file where a re-run reads the
// checkout's .git/HEAD: each is refused or read only up to the cap, at
// once, and the secret never reaches the error.
func TestCheckedOutAtRefusesWhatATestPlantedAsHEAD(t *testing.T) {
	t.Parallel()
	const sha = "0123456789abcdef0123456789abcdef01234567"
	secret := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(secret, []byte(sha+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		plant func(head string) error
		ok    bool
	}{
		{"regular_head_at_the_sha", func(head string) error { return os.WriteFile(head, []byte(sha+"\n"), 0o644) }, true},
		{"symlink_to_a_file_holding_the_sha", func(head string) error { return os.Symlink(secret, head) }, false},
		{"symlink_to_dev_zero", func(head string) error { return os.Symlink("/dev/zero", head) }, false},
		{"fifo_nobody_writes", func(head string) error { return syscall.Mkfifo(head, 0o644) }, false},
		{"huge_file_starting_with_the_sha", func(head string) error {
			return os.WriteFile(head, []byte(sha+"\n"+strings.Repeat("x", 8<<20)), 0o644)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dest := t.TempDir()
			if err := os.Mkdir(filepath.Join(dest, ".git"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.plant(filepath.Join(dest, ".git", "HEAD")); err != nil {
				t.Fatal(err)
			}
			done, err := checkedOutAt(dest, sha)
			if done != tc.ok || (err == nil) != tc.ok {
				t.Errorf("checkedOutAt = %v, %v; want %v", done, err, tc.ok)
			}
		})
	}
}
