package reconcile

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// Limits of what the cache keeps. A JetStream message is at most 1 MB by
// default; answers are stored gzipped (GitHub's JSON, full of repeated
// URLs, shrinks about tenfold), and a larger one is simply not cached.
const (
	maxCachedBody  = 16 << 20
	maxCachedEntry = 900 << 10
)

// keptHeaders are the headers of a cached answer replayed on a 304: the
// body's type and the pagination links, which a 304 need not repeat.
var keptHeaders = []string{"Content-Type", "Link"}

// CacheOptions configure NewCache.
type CacheOptions struct {
	// Reserve is how many requests of a rate-limit window the sweep leaves
	// to others sharing the credentials (the workers' statuses): once
	// GitHub says no more than this remain, requests are refused without
	// being sent, with a *RateLimitedError. Zero stops only at a spent
	// limit.
	Reserve int
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Cache is the sweep's layer under go-github: it makes every GET
// conditional on the ETag of its last answer, kept in the Store, so that an
// unchanged answer costs a 304 (which GitHub does not count against the
// rate limit) even in the next process; it counts the requests sent; and it
// refuses to send any once GitHub's rate limit (or Retry-After) says not
// to, so a sweep never hammers. It is safe for concurrent use.
//
// It is written here rather than taken from an HTTP caching library: those
// (gregjones/httpcache is archived) follow RFC 9111 freshness and would
// answer from cache without asking GitHub for max-age=60, need a storage
// adapter for JetStream anyway, and mark answers X-From-Cache, which makes
// go-github ignore the fresh rate-limit headers a 304 carries.
type Cache struct {
	store *Store
	opts  CacheOptions

	mu          sync.Mutex
	total       int
	notModified int
	rates       map[string]scopeRate
}

// scopeRate is what GitHub last said of one credential's limits.
type scopeRate struct {
	known            bool
	limit, remaining int
	reset            time.Time
	blockedUntil     time.Time // Retry-After of a secondary limit
}

// NewCache returns a Cache keeping answers in store.
func NewCache(store *Store, opts CacheOptions) *Cache {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Cache{store: store, opts: opts, rates: map[string]scopeRate{}}
}

// RequestStats counts the GitHub requests a Cache has sent.
type RequestStats struct {
	// Total is every request sent.
	Total int
	// NotModified is those answered 304, which GitHub does not count.
	NotModified int
	// RateKnown says whether GitHub reported its limits; the fields below
	// are for the credential with the fewest requests left.
	RateKnown     bool
	RateRemaining int
	RateLimit     int
	RateReset     time.Time
}

// Counted is the requests counted against the rate limit: all but 304s.
func (s RequestStats) Counted() int { return s.Total - s.NotModified }

// Requests returns the counters so far.
func (c *Cache) Requests() RequestStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := RequestStats{Total: c.total, NotModified: c.notModified}
	for _, r := range c.rates {
		if r.known && (!st.RateKnown || r.remaining < st.RateRemaining) {
			st.RateKnown, st.RateRemaining, st.RateLimit, st.RateReset = true, r.remaining, r.limit, r.reset
		}
	}
	return st
}

// Transport returns next with the cache on top. scope names the
// credential (an installation, the App, a token) the answers are for:
// the same URL answers differently for different installations.
func (c *Cache) Transport(scope string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &cacheTransport{cache: c, scope: scope, next: next}
}

type cacheTransport struct {
	cache *Cache
	scope string
	next  http.RoundTripper
}

// RoundTrip sends req, conditionally when an earlier answer is cached, and
// turns a 304 into that answer (status 200, the fresh rate-limit headers)
// so that go-github, which treats 304 as an error, sees the data.
func (t *cacheTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.cache
	if err := c.admit(t.scope); err != nil {
		return nil, err
	}
	ctx := req.Context()
	cacheable := req.Method == http.MethodGet && req.Header.Get("If-None-Match") == "" && req.Header.Get("Range") == ""
	url := req.URL.String()
	key := cacheKey(t.scope, url)
	var entry *cacheEntry
	if cacheable {
		entry = c.load(ctx, key, url)
	}
	out := req
	if entry != nil {
		out = req.Clone(ctx)
		out.Header.Set("If-None-Match", entry.ETag)
	}
	resp, err := t.next.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	c.observe(t.scope, resp)
	switch {
	case resp.StatusCode == http.StatusNotModified && entry != nil:
		return entry.replay(req, resp)
	case cacheable && resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != "":
		return c.keep(ctx, key, url, resp)
	}
	return resp, nil
}

// admit refuses a request GitHub has said not to send yet.
func (c *Cache) admit(scope string) error {
	c.mu.Lock()
	r := c.rates[scope]
	c.mu.Unlock()
	now := c.opts.Now()
	if r.blockedUntil.After(now) {
		return &RateLimitedError{Secondary: true, Until: r.blockedUntil, Remaining: r.remaining, Limit: r.limit}
	}
	if r.known && r.remaining <= c.opts.Reserve && r.reset.After(now) {
		return &RateLimitedError{Remaining: r.remaining, Limit: r.limit, Until: r.reset, Reserve: r.remaining > 0}
	}
	return nil
}

// observe counts an answer and records the limits it reports.
func (c *Cache) observe(scope string, resp *http.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	if resp.StatusCode == http.StatusNotModified {
		c.notModified++
	}
	r := c.rates[scope]
	if limit, remaining, reset, ok := rateOf(resp.Header); ok {
		r.known, r.limit, r.remaining, r.reset = true, limit, remaining, reset
	}
	if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests {
		if until := retryAfter(resp.Header, c.opts.Now()); !until.IsZero() {
			r.blockedUntil = until
		}
	}
	c.rates[scope] = r
}

// cacheEntry is one cached answer.
type cacheEntry struct {
	URL    string              `json:"url"`
	ETag   string              `json:"etag"`
	Header map[string][]string `json:"header,omitempty"`
	// Body is gzipped.
	Body []byte `json:"body"`
}

// cacheKey is etag.<scope>.<hash of the URL>: keys must be short and
// made of a few characters, URLs are neither.
func cacheKey(scope, url string) string {
	sum := sha256.Sum256([]byte(url))
	return "etag." + events.EncodeToken(scope) + "." + hex.EncodeToString(sum[:20])
}

// load returns the cached answer for url, or nil. A cache that cannot be
// read costs a full request, not the sweep.
func (c *Cache) load(ctx context.Context, key, url string) *cacheEntry {
	data, _, err := c.store.get(ctx, key)
	if err != nil {
		c.opts.Logger.Warn("reading cached GitHub answer", "url", url, "err", err)
		return nil
	}
	if data == nil {
		return nil
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil || e.URL != url || e.ETag == "" {
		return nil
	}
	return &e
}

// replay is the cached answer with the 304's headers (fresh rate limits).
func (e *cacheEntry) replay(req *http.Request, notModified *http.Response) (*http.Response, error) {
	if err := drain(notModified.Body); err != nil {
		return nil, fmt.Errorf("reading 304 answer: %w", err)
	}
	body, err := gunzip(e.Body)
	if err != nil {
		return nil, fmt.Errorf("decoding cached answer for %s: %w", e.URL, err)
	}
	h := notModified.Header.Clone()
	for _, name := range keptHeaders {
		if v, ok := e.Header[name]; ok && h.Get(name) == "" {
			h[name] = v
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK,
		Proto: notModified.Proto, ProtoMajor: notModified.ProtoMajor, ProtoMinor: notModified.ProtoMinor,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		Request: req,
	}, nil
}

// keep stores a 200 answer with an ETag and returns it with its body
// re-readable. Storing is best effort: a failure is logged and costs a full
// request next time.
func (c *Cache) keep(ctx context.Context, key, url string, resp *http.Response) (*http.Response, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCachedBody+1))
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("reading answer from %s: %w", url, err)
	}
	if len(body) > maxCachedBody {
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	e := cacheEntry{URL: url, ETag: resp.Header.Get("ETag"), Header: map[string][]string{}}
	for _, name := range keptHeaders {
		if v := resp.Header.Values(name); len(v) > 0 {
			e.Header[name] = v
		}
	}
	if e.Body, err = gzipped(body); err != nil {
		return nil, fmt.Errorf("compressing answer from %s: %w", url, err)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding answer from %s: %w", url, err)
	}
	if len(data) > maxCachedEntry {
		c.opts.Logger.Debug("GitHub answer too large to cache", "url", url, "bytes", len(data))
		return resp, nil
	}
	if err := c.store.put(ctx, key, data); err != nil {
		c.opts.Logger.Warn("caching GitHub answer", "url", url, "err", err)
	}
	return resp, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func drain(body io.ReadCloser) error {
	_, err := io.Copy(io.Discard, io.LimitReader(body, 1<<20))
	if cerr := body.Close(); err == nil {
		err = cerr
	}
	return err
}

func gzipped(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(io.LimitReader(zr, maxCachedBody+1))
}
