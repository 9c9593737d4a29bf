package githubauth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testKey is one RSA key for the whole package: generating one is slow.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return key
})

// writeKey writes the test key as GitHub hands App keys out (PKCS#1 PEM).
func writeKey(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.pem")
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey())}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		vars map[string]string
		want Config
	}{
		{"nothing set is an empty config", nil, Config{}},
		{
			"every variable is read and trimmed",
			map[string]string{
				EnvToken: " tok\n", EnvUsername: "bot", EnvPassword: "pw", EnvAppID: " 123 ",
				EnvAppPrivateKey: "/etc/yci/app.pem", EnvAPIURL: "https://ghe.example.com/api/v3",
			},
			Config{Token: "tok", Username: "bot", Password: "pw", AppID: 123,
				AppPrivateKeyFile: "/etc/yci/app.pem", APIURL: "https://ghe.example.com/api/v3"},
		},
		{
			"an app id that is not a number is kept for Validate",
			map[string]string{EnvAppID: "12x"},
			Config{badAppID: "12x"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ConfigFromEnv(env(tc.vars))
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(Config{})); diff != "" {
				t.Errorf("ConfigFromEnv (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	key := writeKey(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cfg      Config
		required bool
		want     []string // one substring per problem, every one reported
		method   Method
	}{
		{name: "nothing configured is valid for a process that needs no GitHub", method: MethodAnonymous},
		{name: "nothing configured fails where credentials are required", required: true,
			want: []string{"no GitHub credentials"}, method: MethodAnonymous},
		{name: "a token alone is valid", cfg: Config{Token: "ghp_x"}, required: true, method: MethodToken},
		{name: "a token wins over basic credentials", cfg: Config{Token: "t", Username: "u", Password: "p"}, method: MethodToken},
		{name: "basic credentials are valid", cfg: Config{Username: "u", Password: "p"}, required: true, method: MethodBasic},
		{name: "an app with a readable key is valid", cfg: Config{AppID: 1, AppPrivateKeyFile: key, APIURL: "http://127.0.0.1:1/api/v3"}, required: true, method: MethodApp},
		{name: "an app id without a key file", cfg: Config{AppID: 1}, want: []string{EnvAppPrivateKey + " is not"}, method: MethodApp},
		{name: "a key file without an app id", cfg: Config{AppPrivateKeyFile: key}, want: []string{EnvAppID + " is not"}, method: MethodApp},
		{name: "an unreadable key file", cfg: Config{AppID: 1, AppPrivateKeyFile: filepath.Join(t.TempDir(), "missing.pem")},
			want: []string{"reading " + EnvAppPrivateKey}, method: MethodApp},
		{name: "a key file that holds no key", cfg: Config{AppID: 1, AppPrivateKeyFile: garbage}, want: []string{"no RSA private key"}, method: MethodApp},
		{
			name: "every problem is reported at once",
			cfg: Config{
				badAppID: "12x", AppPrivateKeyFile: garbage, Token: "has space", Username: "a:b",
				APIURL: "ftp://example.com", Timeout: -time.Second,
			},
			required: true,
			want: []string{
				"white space", "must be set together", "cannot contain ':'", `"12x" is not a number`,
				"choose one identity", "no RSA private key", "http or https", "negative",
			},
			method: MethodApp,
		},
		{name: "an API URL with credentials", cfg: Config{Token: "t", APIURL: "https://u:secret@ghe.example.com/"},
			want: []string{"must not carry credentials"}, method: MethodToken},
		{name: "an API URL without a host", cfg: Config{Token: "t", APIURL: "https:///api/v3"}, want: []string{"has no host"}, method: MethodToken},
		{name: "an API URL with a query", cfg: Config{Token: "t", APIURL: "https://ghe.example.com/?x=1"}, want: []string{"query"}, method: MethodToken},
		{name: "a malformed API URL", cfg: Config{Token: "t", APIURL: "https://u:p%zz@host/"}, want: []string{"not a valid URL"}, method: MethodToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if tc.required {
				err = tc.cfg.RequireCredentials()
			}
			checkProblems(t, err, tc.want)
			if got := tc.cfg.Method(); got != tc.method {
				t.Errorf("Method() = %q, want %q", got, tc.method)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("a problem quotes a secret: %v", err)
			}
		})
	}
}

// checkProblems asserts err joins exactly one problem per wanted substring.
func checkProblems(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("got %v, want no problem", err)
		}
		return
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("got %v, want %d problems joined", err, len(want))
	}
	problems := joined.Unwrap()
	if len(problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(problems), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("no problem mentions %q in:\n%v", w, err)
		}
	}
}

func TestRequireCredentialsReportsErrNoCredentials(t *testing.T) {
	t.Parallel()
	if err := (Config{}).RequireCredentials(); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("RequireCredentials() = %v, want ErrNoCredentials", err)
	}
}

func TestAPIBase(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, base, upload string }{
		{"", "https://api.github.com/", "https://uploads.github.com/"},
		{"https://ghe.example.com/api/v3", "https://ghe.example.com/api/v3/", "https://ghe.example.com/api/uploads/"},
		{"http://127.0.0.1:8080//", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			base := Config{APIURL: tc.in}.apiBase()
			if base != tc.base || uploadBase(base) != tc.upload {
				t.Errorf("apiBase, uploadBase = %q, %q; want %q, %q", base, uploadBase(base), tc.base, tc.upload)
			}
		})
	}
}
