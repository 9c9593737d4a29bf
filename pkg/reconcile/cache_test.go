package reconcile_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/yourci/yourci/pkg/reconcile"
)

// etagServer answers GET with its current body and an ETag derived from
// it, 304 when If-None-Match matches, and records what it was asked.
type etagServer struct {
	mu       sync.Mutex
	body     string
	withETag bool
	asked    []string // "GET 200", "GET 304", ...
}

func (s *etagServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	etag := fmt.Sprintf(`"%x"`, sha256.Sum256([]byte(s.body)))
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4000")
	w.Header().Set("X-RateLimit-Reset", "4102444800")
	if s.withETag {
		w.Header().Set("ETag", etag)
	}
	if s.withETag && r.Method == http.MethodGet && r.Header.Get("If-None-Match") == etag {
		s.asked = append(s.asked, r.Method+" 304")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.asked = append(s.asked, r.Method+" 200")
	w.Header().Set("Link", `<`+r.URL.Path+`?page=2>; rel="next"`)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, s.body)
}

func (s *etagServer) set(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = body
}

func (s *etagServer) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.asked, ", ")
}

func TestCacheMakesReadsConditionalAcrossProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := &etagServer{body: `[{"number":1}]`, withETag: true}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	// get reads url through a new Cache (a new process) in scope.
	get := func(t *testing.T, scope, method, url string) (*http.Response, string, reconcile.RequestStats) {
		t.Helper()
		cache := reconcile.NewCache(e.store, reconcile.CacheOptions{Logger: testLogger(t)})
		client := &http.Client{Transport: cache.Transport(scope, nil)}
		req, err := http.NewRequestWithContext(testContext(t), method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body), cache.Requests()
	}

	resp, body, st := get(t, "token", "GET", ts.URL+"/list")
	if resp.StatusCode != 200 || body != `[{"number":1}]` || st.Total != 1 || st.NotModified != 0 {
		t.Fatalf("first read: %d %q %+v", resp.StatusCode, body, st)
	}
	t.Run("an_unchanged_answer_costs_a_304_and_reads_as_before", func(t *testing.T) {
		resp, body, st := get(t, "token", "GET", ts.URL+"/list")
		if resp.StatusCode != 200 || body != `[{"number":1}]` || !strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
			t.Errorf("replayed answer %d %q with Link %q, want the cached body and links", resp.StatusCode, body, resp.Header.Get("Link"))
		}
		if st.Total != 1 || st.NotModified != 1 || st.Counted() != 0 || st.RateRemaining != 4000 {
			t.Errorf("requests %+v: want one, answered 304, with the fresh rate limit", st)
		}
	})
	t.Run("a_changed_answer_is_read_and_kept_anew", func(t *testing.T) {
		srv.set(`[{"number":1},{"number":2}]`)
		if _, body, _ := get(t, "token", "GET", ts.URL+"/list"); body != `[{"number":1},{"number":2}]` {
			t.Errorf("read %q, want the new answer", body)
		}
		if _, body, st := get(t, "token", "GET", ts.URL+"/list"); body != `[{"number":1},{"number":2}]` || st.NotModified != 1 {
			t.Errorf("read %q with %+v, want the new answer from a 304", body, st)
		}
	})
	t.Run("another_credential_does_not_share_answers", func(t *testing.T) {
		if _, _, st := get(t, "installation-7", "GET", ts.URL+"/list"); st.NotModified != 0 {
			t.Errorf("requests %+v: want a full read for a new scope", st)
		}
	})
	t.Run("writes_are_never_conditional", func(t *testing.T) {
		before := srv.log()
		if resp, _, _ := get(t, "token", "POST", ts.URL+"/list"); resp.StatusCode != 200 {
			t.Errorf("POST answered %d", resp.StatusCode)
		}
		if got := strings.TrimPrefix(srv.log(), before); got != ", POST 200" {
			t.Errorf("server saw %q, want a plain POST", got)
		}
	})
	t.Run("answers_without_an_etag_are_not_kept", func(t *testing.T) {
		plain := &etagServer{body: `{"a":1}`}
		ps := httptest.NewServer(plain)
		t.Cleanup(ps.Close)
		get(t, "token", "GET", ps.URL+"/x")
		if _, _, st := get(t, "token", "GET", ps.URL+"/x"); st.NotModified != 0 {
			t.Errorf("requests %+v: want a full read again", st)
		}
	})
}
