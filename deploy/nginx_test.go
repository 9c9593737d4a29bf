package deploy

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The lines of nginx/yourci.conf the tests replace, as an operator would.
const (
	nginxConf        = "nginx/yourci.conf"
	nginxListen      = "listen 80;"
	nginxListenIPv6  = "listen [::]:80;"
	nginxRoot        = "root /srv/yourci/workspace;"
	nginxTokenLine   = `#rewrite "^/CHANGE-ME-TOKEN(/.*)$" $1 break;`
	nginxTokenReturn = "#return 404;"
	nginxAuthLine    = `#auth_basic "YourCI logs";`
	nginxAuthFile    = "#auth_basic_user_file /etc/nginx/yourci.htpasswd;"
)

// nginxMain is the top-level configuration the tests run. Besides what a
// private, foreground nginx needs, its http block carries settings an
// operator's own nginx.conf may well have (Debian's has some): the server
// block must override each, or a growing log, its type or byte ranges break.
const nginxMain = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;

    types { text/html html; application/octet-stream txt; }
    default_type application/octet-stream;
    sendfile on;
    gzip on;
    gzip_types text/plain;
    gzip_min_length 1;
    open_file_cache max=64 inactive=1m;
    open_file_cache_valid 1m;
    open_file_cache_errors on;
    etag off;
    if_modified_since exact;

    include %[1]s/yourci.conf;
}
`

// nginxServer is a running nginx serving one copy of yourci.conf.
type nginxServer struct {
	addr   string // host:port
	client *http.Client
}

// startNginx runs nginx with site(listen), a copy of yourci.conf whose
// listen lines are replaced by listen, and returns once it answers. It
// retries with another port when the one it picked was taken meanwhile.
func startNginx(t *testing.T, site func(listen string) string) *nginxServer {
	t.Helper()
	bin := requireBinary(t, "/usr/sbin/nginx", "YCI_NGINX", "YCI_REQUIRE_NGINX")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), fmt.Appendf(nil, nginxMain, dir), 0o644); err != nil {
		t.Fatalf("writing nginx.conf: %v", err)
	}
	errLog := filepath.Join(dir, "error.log")
	for attempt := 1; ; attempt++ {
		addr := "127.0.0.1:" + strconv.Itoa(freePorts(t, 1)[0])
		if err := os.WriteFile(filepath.Join(dir, "yourci.conf"), []byte(site("listen "+addr+";")), 0o644); err != nil {
			t.Fatalf("writing yourci.conf: %v", err)
		}
		cmd := exec.Command(bin, "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf"), "-e", errLog)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		// SIGQUIT: nginx's graceful shutdown.
		p := startProcess(t, cmd, syscall.SIGQUIT)
		if waitListening(addr, p.exited) {
			return &nginxServer{addr: addr, client: &http.Client{Timeout: processTimeout}}
		}
		logged, err := os.ReadFile(errLog)
		if err != nil {
			logged = []byte(err.Error())
		}
		<-p.exited
		if attempt < 3 && strings.Contains(string(logged), "Address already in use") {
			continue
		}
		t.Fatalf("nginx did not answer on %s (exit: %v)\noutput:\n%s\nerror log:\n%s", addr, p.err, out.String(), logged)
	}
}

// request sends method to path exactly as written (no cleaning or escaping
// by the client, so traversal attempts reach nginx intact) and returns the
// response with its body read.
func (s *nginxServer) request(t *testing.T, method, path string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+"/", nil)
	if err != nil {
		t.Fatalf("building request: %v", err)
	}
	req.URL.Opaque = path
	for k, v := range header {
		req.Header[k] = v
	}
	// As browsers and `curl --compressed` do; the client then leaves the
	// body as sent, so a compressed answer would show.
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s %s: %v", method, path, err)
	}
	return resp, string(body)
}

// siteFor returns yourci.conf serving root, with the extra replacements
// applied (pairs of old and new strings).
func siteFor(t *testing.T, root string, oldnew ...string) func(listen string) string {
	conf := readDeployFile(t, nginxConf)
	return func(listen string) string {
		pairs := append([]string{nginxListen, listen, nginxListenIPv6, "", nginxRoot, "root " + root + ";"}, oldnew...)
		return substitute(t, nginxConf, conf, pairs...)
	}
}

// writeFile creates path, and its directories, holding content.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("creating directory of %s: %v", path, err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}

// symlink creates link pointing at target, and the link's directories.
func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatalf("creating directory of %s: %v", link, err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatalf("linking %s: %v", link, err)
	}
}

// prepSHA is the head commit of the fixture's preparation log.
const prepSHA = "0123456789abcdef0123456789abcdef01234567"

// secret marks every file of the fixture that must never be served.
const secret = "SECRET"

// workspaceFixture lays out a worker's workspace as pkg/artifacts does, with
// the things a hostile pull request or test could plant in it, and a
// directory outside it. It returns the workspace root.
func workspaceFixture(t *testing.T) string {
	t.Helper()
	ws, outside := t.TempDir(), t.TempDir()
	files := map[string]string{
		"o/r/source/HEAD":                            secret + " mirror head",
		"o/r/source/config":                          secret + " mirror config",
		"o/r/pulls/1/2/source/test.sh":               secret + " build checkout",
		"o/r/pulls/1/2/source/out.txt":               secret + " a file named out.txt in the checkout",
		"o/r/pulls/1/2/source/.git/config":           secret + " checkout git config",
		"o/r/pulls/1/2/foo-x/out.txt":                "log of foo-x\n",
		"o/r/pulls/1/2/foo-x/.env":                   secret + " dotfile",
		"o/r/pulls/1/2/foo-x/source/test.sh":         secret + " test working copy",
		"o/r/pulls/1/2/foo-x/source/out.txt":         secret + " out.txt in the working copy",
		"o/.github/pulls/3/1/lint.py3.11/out.txt":    "log of lint.py3.11\n",
		"o/r/pulls/1/2/foo-x/rerun-1/out.txt":        "log of foo-x re-run 1\n",
		"o/r/pulls/1/prepare-" + prepSHA + ".txt":    "preparing " + prepSHA + "\n",
		"o/r/pulls/1/prepare-" + prepSHA + ".env":    secret + " not a preparation log",
		"o/r/pulls/1/2/foo-x/rerun-1/source/out.txt": secret + " out.txt in a re-run's working copy",
		"o/r/pulls/1/2/foo-x/rerun-1/.env":           secret + " dotfile beside a re-run's log",
		".git/config":                                secret + " git config at the root",
		".env":                                       secret + " dotfile at the root",
	}
	for name, content := range files {
		writeFile(t, filepath.Join(ws, name), content)
	}
	writeFile(t, filepath.Join(outside, "secret.txt"), secret+" outside the workspace")
	writeFile(t, filepath.Join(outside, "pulls9/1/t/out.txt"), secret+" log outside the workspace")
	symlink(t, "pulls/1/2/foo-x/out.txt", filepath.Join(ws, "o/r/1-2-foo-x-out.txt"))
	symlink(t, filepath.Join(outside, "secret.txt"), filepath.Join(ws, "o/r/pulls/1/2/escape/out.txt"))
	symlink(t, "../source/test.sh", filepath.Join(ws, "o/r/pulls/1/2/inside-link/out.txt"))
	symlink(t, filepath.Join(outside, "pulls9"), filepath.Join(ws, "o/r/pulls/9"))
	symlink(t, filepath.Join(outside, "secret.txt"), filepath.Join(ws, "o/r/5-1-evil-out.txt"))
	return ws
}

func TestNginxServesLogsOnly(t *testing.T) {
	t.Parallel()
	ws := workspaceFixture(t)
	srv := startNginx(t, siteFor(t, ws))

	served := []struct {
		name, path, body string
	}{
		{"log_at_the_status_target_url", "/o/r/pulls/1/2/foo-x/out.txt", "log of foo-x\n"},
		{"short_symlink_name_serves_its_log", "/o/r/1-2-foo-x-out.txt", "log of foo-x\n"},
		{"repository_starting_with_a_dot", "/o/.github/pulls/3/1/lint.py3.11/out.txt", "log of lint.py3.11\n"},
		{"re_run_log_beside_the_first", "/o/r/pulls/1/2/foo-x/rerun-1/out.txt", "log of foo-x re-run 1\n"},
		{"preparation_log_of_a_head", "/o/r/pulls/1/prepare-" + prepSHA + ".txt", "preparing " + prepSHA + "\n"},
	}
	for _, tc := range served {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := srv.request(t, http.MethodGet, tc.path, nil)
			if resp.StatusCode != http.StatusOK || body != tc.body {
				t.Fatalf("GET %s = %d %q, want 200 %q", tc.path, resp.StatusCode, body, tc.body)
			}
			for header, want := range map[string]string{
				"Content-Type":           "text/plain; charset=utf-8",
				"X-Content-Type-Options": "nosniff",
				"Content-Encoding":       "",
			} {
				if got := resp.Header.Get(header); got != want {
					t.Errorf("%s = %q, want %q", header, got, want)
				}
			}
		})
	}

	refused := []struct {
		name, method, path string
	}{
		{"build_checkout_file", "GET", "/o/r/pulls/1/2/source/test.sh"},
		{"out_txt_inside_the_build_checkout", "GET", "/o/r/pulls/1/2/source/out.txt"},
		{"git_config_of_the_checkout", "GET", "/o/r/pulls/1/2/source/.git/config"},
		{"test_working_copy_file", "GET", "/o/r/pulls/1/2/foo-x/source/test.sh"},
		{"out_txt_inside_a_test_working_copy", "GET", "/o/r/pulls/1/2/foo-x/source/out.txt"},
		{"mirror_head", "GET", "/o/r/source/HEAD"},
		{"mirror_config", "GET", "/o/r/source/config"},
		{"git_path_at_the_root", "GET", "/.git/config"},
		{"dotfile_at_the_root", "GET", "/.env"},
		{"dotfile_beside_a_log", "GET", "/o/r/pulls/1/2/foo-x/.env"},
		{"short_name_of_the_build_checkout", "GET", "/o/r/1-2-source-out.txt"},
		{"listing_of_the_root", "GET", "/"},
		{"listing_of_a_repository", "GET", "/o/r/"},
		{"listing_of_a_build", "GET", "/o/r/pulls/1/2/"},
		{"listing_of_a_test_directory", "GET", "/o/r/pulls/1/2/foo-x/"},
		{"dot_dot_into_the_checkout", "GET", "/o/r/pulls/1/2/foo-x/../source/test.sh"},
		{"encoded_dot_dot_onto_a_checkout_out_txt", "GET", "/o/r/pulls/1/2/foo-x/%2e%2e/source/out.txt"},
		{"encoded_slash_into_the_checkout", "GET", "/o/r/pulls/1/2/source%2fout.txt"},
		{"log_symlinked_outside_the_workspace", "GET", "/o/r/pulls/1/2/escape/out.txt"},
		{"log_symlinked_to_a_checkout_file", "GET", "/o/r/pulls/1/2/inside-link/out.txt"},
		{"pull_directory_symlinked_outside", "GET", "/o/r/pulls/9/1/t/out.txt"},
		{"short_name_symlinked_outside", "GET", "/o/r/5-1-evil-out.txt"},
		{"short_name_onto_a_symlinked_log", "GET", "/o/r/1-2-escape-out.txt"},
		{"out_txt_inside_a_re_run_working_copy", "GET", "/o/r/pulls/1/2/foo-x/rerun-1/source/out.txt"},
		{"dotfile_beside_a_re_run_log", "GET", "/o/r/pulls/1/2/foo-x/rerun-1/.env"},
		{"re_run_zero_is_not_a_re_run", "GET", "/o/r/pulls/1/2/foo-x/rerun-0/out.txt"},
		{"re_run_of_the_build_checkout", "GET", "/o/r/pulls/1/2/source/rerun-1/out.txt"},
		{"dot_dot_from_a_re_run_into_the_working_copy", "GET", "/o/r/pulls/1/2/foo-x/rerun-1/../source/out.txt"},
		{"preparation_log_by_another_extension", "GET", "/o/r/pulls/1/prepare-" + prepSHA + ".env"},
		{"preparation_log_of_a_short_sha", "GET", "/o/r/pulls/1/prepare-abc.txt"},
		{"writing_a_log", "PUT", "/o/r/pulls/1/2/foo-x/out.txt"},
		{"deleting_a_log", "DELETE", "/o/r/pulls/1/2/foo-x/out.txt"},
	}
	for _, tc := range refused {
		t.Run("refuses_"+tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := srv.request(t, tc.method, tc.path, nil)
			switch resp.StatusCode {
			case http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
			default:
				t.Errorf("%s %s = %d, want 403, 404 or 405", tc.method, tc.path, resp.StatusCode)
			}
			if strings.Contains(body, secret) {
				t.Errorf("%s %s leaked a file: %q", tc.method, tc.path, body)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(ws, "o/r/pulls/1/2/foo-x/out.txt")); err != nil {
		t.Errorf("the log is gone after PUT and DELETE: %v", err)
	}
}

func TestNginxServesAGrowingLog(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	srv := startNginx(t, siteFor(t, ws))
	const path = "/o/r/pulls/4/1/foo-x/out.txt"
	logPath := filepath.Join(ws, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	// Held open and appended to, as the pipeline writes a running test's log.
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const part1, part2 = "part 1: running\n", "part 2: still running\n"
	write := func(s string) {
		t.Helper()
		if _, err := f.WriteString(s); err != nil {
			t.Fatalf("appending to the log: %v", err)
		}
	}

	write(part1)
	first, body := srv.request(t, http.MethodGet, path, nil)
	if first.StatusCode != http.StatusOK || body != part1 {
		t.Fatalf("first GET = %d %q, want 200 %q", first.StatusCode, body, part1)
	}

	write(part2)
	t.Run("revalidation_after_an_append_returns_the_whole_log", func(t *testing.T) {
		// The validators of the first answer: a wrong 304 here would hide
		// part 2 from a browser or proxy that cached part 1.
		resp, body := srv.request(t, http.MethodGet, path, http.Header{
			"If-None-Match":     {first.Header.Get("ETag")},
			"If-Modified-Since": {first.Header.Get("Last-Modified")},
		})
		if resp.StatusCode != http.StatusOK || body != part1+part2 {
			t.Fatalf("GET after append = %d %q, want 200 %q", resp.StatusCode, body, part1+part2)
		}
		if resp.Header.Get("ETag") == first.Header.Get("ETag") {
			t.Errorf("ETag %s did not change when the log grew", resp.Header.Get("ETag"))
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("Cache-Control = %q, want no-cache", cc)
		}
	})
	t.Run("append_within_the_same_second_is_not_hidden_by_if_modified_since", func(t *testing.T) {
		// Last-Modified has one-second resolution: put the log's mtime back
		// to what the first answer said, as an append within that second
		// leaves it, and revalidate by date alone (as `curl -z` does).
		lastModified, err := http.ParseTime(first.Header.Get("Last-Modified"))
		if err != nil {
			t.Fatalf("parsing Last-Modified: %v", err)
		}
		if err := os.Chtimes(logPath, lastModified, lastModified); err != nil {
			t.Fatal(err)
		}
		resp, body := srv.request(t, http.MethodGet, path, http.Header{"If-Modified-Since": {first.Header.Get("Last-Modified")}})
		if resp.StatusCode != http.StatusOK || body != part1+part2 {
			t.Fatalf("GET If-Modified-Since = %d %q, want 200 %q", resp.StatusCode, body, part1+part2)
		}
	})
	t.Run("revalidation_of_an_unchanged_log_is_not_modified", func(t *testing.T) {
		current, _ := srv.request(t, http.MethodGet, path, nil)
		resp, body := srv.request(t, http.MethodGet, path, http.Header{"If-None-Match": {current.Header.Get("ETag")}})
		if resp.StatusCode != http.StatusNotModified || body != "" {
			t.Fatalf("conditional GET = %d %q, want 304 and no body", resp.StatusCode, body)
		}
	})
	t.Run("range_from_the_bytes_read_returns_only_the_new_part", func(t *testing.T) {
		resp, body := srv.request(t, http.MethodGet, path, http.Header{"Range": {fmt.Sprintf("bytes=%d-", len(part1))}})
		if resp.StatusCode != http.StatusPartialContent || body != part2 {
			t.Fatalf("range GET = %d %q, want 206 %q", resp.StatusCode, body, part2)
		}
	})
	t.Run("short_name_follows_the_growing_log", func(t *testing.T) {
		symlink(t, "pulls/4/1/foo-x/out.txt", filepath.Join(ws, "o/r/4-1-foo-x-out.txt"))
		resp, body := srv.request(t, http.MethodGet, "/o/r/4-1-foo-x-out.txt", nil)
		if resp.StatusCode != http.StatusOK || body != part1+part2 {
			t.Fatalf("GET short name = %d %q, want 200 %q", resp.StatusCode, body, part1+part2)
		}
	})
}

func TestNginxOptionalTokenAndBasicAuth(t *testing.T) {
	t.Parallel()
	ws := workspaceFixture(t)
	htpasswd := filepath.Join(t.TempDir(), "yourci.htpasswd")
	// {PLAIN} keeps the test free of a hashing tool; operators use bcrypt.
	writeFile(t, htpasswd, "alice:{PLAIN}wonderland\n")
	const token = "0123456789abcdef0123456789abcdef"
	srv := startNginx(t, siteFor(t, ws,
		nginxTokenLine, strings.Replace(strings.TrimPrefix(nginxTokenLine, "#"), "CHANGE-ME-TOKEN", token, 1),
		nginxTokenReturn, strings.TrimPrefix(nginxTokenReturn, "#"),
		nginxAuthLine, strings.TrimPrefix(nginxAuthLine, "#"),
		nginxAuthFile, "auth_basic_user_file "+htpasswd+";",
	))
	auth := func(user, password string) http.Header {
		return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}}
	}

	tests := []struct {
		name   string
		path   string
		header http.Header
		want   int
	}{
		{"log_without_the_token_is_not_found", "/o/r/pulls/1/2/foo-x/out.txt", auth("alice", "wonderland"), http.StatusNotFound},
		{"token_without_a_password_is_unauthorized", "/" + token + "/o/r/pulls/1/2/foo-x/out.txt", nil, http.StatusUnauthorized},
		{"token_with_a_wrong_password_is_unauthorized", "/" + token + "/o/r/pulls/1/2/foo-x/out.txt", auth("alice", "queen"), http.StatusUnauthorized},
		{"token_and_password_serve_the_log", "/" + token + "/o/r/pulls/1/2/foo-x/out.txt", auth("alice", "wonderland"), http.StatusOK},
		{"token_and_password_serve_the_short_name", "/" + token + "/o/r/1-2-foo-x-out.txt", auth("alice", "wonderland"), http.StatusOK},
		{"token_and_password_still_refuse_source", "/" + token + "/o/r/pulls/1/2/source/test.sh", auth("alice", "wonderland"), http.StatusNotFound},
		{"token_and_password_still_refuse_git", "/" + token + "/.git/config", auth("alice", "wonderland"), http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := srv.request(t, http.MethodGet, tc.path, tc.header)
			if resp.StatusCode != tc.want {
				t.Fatalf("GET %s = %d, want %d", tc.path, resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusOK && body != "log of foo-x\n" {
				t.Errorf("GET %s body = %q, want the log", tc.path, body)
			}
			if strings.Contains(body, secret) {
				t.Errorf("GET %s leaked a file: %q", tc.path, body)
			}
		})
	}
}
