package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// counter is a Publisher that only counts, so the benchmark measures the
// handler and not a queue.
type counter struct{ n atomic.Int64 }

func (c *counter) PublishPull(context.Context, events.PullEvent) error {
	c.n.Add(1)
	return nil
}

// bareHandler is the baseline the receiver is compared with: it reads the
// bounded body, checks the HMAC and answers 200, nothing more.
func bareHandler(secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		want := hex.EncodeToString(mac.Sum(nil))
		got := strings.TrimPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
		if !hmac.Equal([]byte(got), []byte(want)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// BenchmarkHandler serves a real-size (~26 KB) signed pull_request delivery
// alternately to the bare HMAC handler and to the receiver's handler, and
// reports each one's time per delivery, their ratio, and the receiver's
// p50/p99 latency. The queue is left out (see cmd/receiver's benchmark for
// the figure with JetStream).
func BenchmarkHandler(b *testing.B) {
	body := fixture(b, "opened.json")
	sig := signature(testSecret, body)
	pub := &counter{}
	full := newTestHandler(b, pub)
	bare := bareHandler(testSecret)
	newReq := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
		r.Header.Set("X-GitHub-Event", "pull_request")
		r.Header.Set("X-GitHub-Delivery", testDelivery)
		r.Header.Set("X-Hub-Signature-256", sig)
		return r
	}
	var fullLat, bareLat []time.Duration
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		br, fr := newReq(), newReq()
		bw, fw := httptest.NewRecorder(), httptest.NewRecorder()
		t0 := time.Now()
		bare.ServeHTTP(bw, br)
		t1 := time.Now()
		full.ServeHTTP(fw, fr)
		t2 := time.Now()
		if bw.Code != http.StatusOK || fw.Code != http.StatusAccepted {
			b.Fatalf("bare answered %d, receiver %d: %s", bw.Code, fw.Code, fw.Body)
		}
		bareLat = append(bareLat, t1.Sub(t0))
		fullLat = append(fullLat, t2.Sub(t1))
	}
	if pub.n.Load() != int64(len(fullLat)) {
		b.Fatalf("published %d of %d deliveries", pub.n.Load(), len(fullLat))
	}
	fullMean, bareMean := mean(fullLat), mean(bareLat)
	b.ReportMetric(fullMean, "receiver-ns/op")
	b.ReportMetric(bareMean, "bare-ns/op")
	b.ReportMetric(fullMean/bareMean, "ratio")
	b.ReportMetric(percentile(fullLat, 0.50), "p50-ns")
	b.ReportMetric(percentile(fullLat, 0.99), "p99-ns")
}

func mean(d []time.Duration) float64 {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return float64(sum) / float64(len(d))
}

// percentile returns the q-quantile of d in nanoseconds (nearest rank).
func percentile(d []time.Duration, q float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return float64(s[max(0, min(i, len(s)-1))])
}
