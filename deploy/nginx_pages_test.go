package deploy

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/pages"
)

func TestNginxServesPages(t *testing.T) {
	t.Parallel()
	ws := workspaceFixture(t)
	for name, content := range map[string]string{
		"o/r/index.html":                        "<p>repository page</p>",
		"o/r/pulls/1/2/index.html":              "<p>build page</p>",
		"o/r/pulls/1/2/build.json":              `{"tests":[]}`,
		"o/r/pulls/1/2/foo-x/index.html":        secret + " page a test wrote in its directory",
		"o/r/pulls/1/2/source/index.html":       secret + " page in the checkout",
		"o/r/source/index.html":                 secret + " page in the mirror",
		"o/r/pulls/1/2/source/build.json":       secret + " state in the checkout",
		"o/r/pulls/1/2/foo-x/source/x.html":     secret + " html in a working copy",
		"o/.github/pulls/3/1/index.html":        "<p>dot repository build page</p>",
		"o/r/pulls/1/2/.index.html":             secret + " dotfile page",
		"o/index.html":                          secret + " owner-level page",
		"index.html":                            "<p>box page</p>",
		"o/r/pulls/1/4/out.txt":                 secret + " file in a build without a page",
		"o/r/pulls/1/2/foo-x/source/build.json": secret + " state in a working copy",
	} {
		writeFile(t, filepath.Join(ws, name), content)
	}
	symlink(t, filepath.Join(ws, "o/r/source/index.html"), filepath.Join(ws, "o/r/pulls/1/3/index.html"))
	srv := startNginx(t, siteFor(t, ws))

	served := []struct {
		name, path, body, contentType string
	}{
		{"repository_page", "/o/r/index.html", "<p>repository page</p>", "text/html; charset=utf-8"},
		{"build_page", "/o/r/pulls/1/2/index.html", "<p>build page</p>", "text/html; charset=utf-8"},
		{"build_state", "/o/r/pulls/1/2/build.json", `{"tests":[]}`, "application/json"},
		{"build_page_of_a_dot_repository", "/o/.github/pulls/3/1/index.html", "<p>dot repository build page</p>", "text/html; charset=utf-8"},
		{"box_page", "/index.html", "<p>box page</p>", "text/html; charset=utf-8"},
		{"box_page_by_its_directory", "/", "<p>box page</p>", "text/html; charset=utf-8"},
		{"repository_page_by_its_directory", "/o/r/", "<p>repository page</p>", "text/html; charset=utf-8"},
		{"build_page_by_its_directory", "/o/r/pulls/1/2/", "<p>build page</p>", "text/html; charset=utf-8"},
	}
	for _, tc := range served {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := srv.request(t, http.MethodGet, tc.path, nil)
			if resp.StatusCode != http.StatusOK || body != tc.body {
				t.Fatalf("GET %s = %d %q, want 200 %q", tc.path, resp.StatusCode, body, tc.body)
			}
			want := map[string]string{
				"Content-Type":           tc.contentType,
				"X-Content-Type-Options": "nosniff",
				"Cache-Control":          "no-cache",
				"Content-Encoding":       "",
			}
			if strings.HasSuffix(tc.path, ".html") || strings.HasSuffix(tc.path, "/") {
				// Exactly the policy the pages were rendered for: their
				// script and style run, nothing else does.
				want["Content-Security-Policy"] = pages.ContentSecurityPolicy()
			}
			for header, v := range want {
				if got := resp.Header.Get(header); got != v {
					t.Errorf("%s = %q, want %q", header, got, v)
				}
			}
		})
	}

	refused := []struct{ name, path string }{
		{"page_in_a_test_directory", "/o/r/pulls/1/2/foo-x/index.html"},
		{"page_in_the_build_checkout", "/o/r/pulls/1/2/source/index.html"},
		{"page_in_the_mirror", "/o/r/source/index.html"},
		{"state_in_the_build_checkout", "/o/r/pulls/1/2/source/build.json"},
		{"state_in_a_working_copy", "/o/r/pulls/1/2/foo-x/source/build.json"},
		{"html_in_a_working_copy", "/o/r/pulls/1/2/foo-x/source/x.html"},
		{"dotfile_page", "/o/r/pulls/1/2/.index.html"},
		{"owner_level_page", "/o/index.html"},
		{"listing_of_a_build_without_a_page", "/o/r/pulls/1/4/"},
		{"listing_of_a_test_directory", "/o/r/pulls/1/2/foo-x/"},
		{"listing_of_the_mirror", "/o/r/source/"},
		{"listing_of_an_owner", "/o/"},
		{"listing_of_pulls", "/o/r/pulls/"},
		{"page_symlinked_to_the_mirror", "/o/r/pulls/1/3/index.html"},
		{"dot_dot_from_a_page_into_the_checkout", "/o/r/pulls/1/2/../2/source/index.html"},
	}
	for _, tc := range refused {
		t.Run("refuses_"+tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := srv.request(t, http.MethodGet, tc.path, nil)
			if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusForbidden {
				t.Errorf("GET %s = %d, want 403 or 404", tc.path, resp.StatusCode)
			}
			if strings.Contains(body, secret) {
				t.Errorf("GET %s leaked a file: %q", tc.path, body)
			}
		})
	}
}
