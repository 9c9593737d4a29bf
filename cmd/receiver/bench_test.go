package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/webhook"
)

// bareHMAC is the baseline: read the body, check the signature, answer
// 200. It queues nothing.
func bareHMAC(w http.ResponseWriter, r *http.Request) {
	if _, ok := readSigned(w, r, 25<<20); ok {
		w.WriteHeader(http.StatusOK)
	}
}

// readSigned reads r's body, at most limit bytes, and checks its signature
// with testSecret, answering the error itself when either fails.
func readSigned(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return nil, false
	}
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write(body)
	got := strings.TrimPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
	if !hmac.Equal([]byte(got), []byte(hex.EncodeToString(mac.Sum(nil)))) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return nil, false
	}
	return body, true
}

// BenchmarkReceiver sends real-size (~26 KB) signed pull_request deliveries
// over HTTP, one at a time, alternately to a bare HMAC-checking server and
// to the receiver, which answers only once the embedded JetStream (file
// storage) has acknowledged the event. It reports the receiver's
// acknowledged webhooks per second, its p50/p99 latency, and its time per
// delivery against the bare server's.
func BenchmarkReceiver(b *testing.B) {
	opts := Options{
		Listen: "127.0.0.1:0", WebhookSecret: testSecret, NATS: natsserver.Endpoint{Store: b.TempDir(), Port: -1},
		ApprovalLabel: "ok-to-test", PublishTimeout: 5 * time.Second, ShutdownTimeout: 10 * time.Second, MaxInflightBytes: webhook.DefaultMaxInflightBytes,
	}
	r := startBenchReceiver(b, opts)
	bare := httptest.NewServer(http.HandlerFunc(bareHMAC))
	defer bare.Close()

	body := opened(b)
	sig := sign(body)
	post := func(url string, i int) (int, time.Duration) {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			b.Fatalf("building request: %v", err)
		}
		req.Header.Set("X-GitHub-Event", "pull_request")
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", i))
		req.Header.Set("X-Hub-Signature-256", sig)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatalf("POST %s: %v", url, err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatalf("reading answer: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}

	var recvLat, bareLat []time.Duration
	b.SetBytes(int64(len(body)))
	i := 0
	for b.Loop() {
		i++
		bc, bd := post(bare.URL, i)
		rc, rd := post("http://"+r.Addr()+"/webhook", i)
		if bc != http.StatusOK || rc != http.StatusAccepted {
			b.Fatalf("bare answered %d, receiver %d", bc, rc)
		}
		bareLat, recvLat = append(bareLat, bd), append(recvLat, rd)
	}
	recvMean, bareMean := meanNs(recvLat), meanNs(bareLat)
	b.ReportMetric(1e9/recvMean, "webhooks/s")
	b.ReportMetric(recvMean, "receiver-ns/op")
	b.ReportMetric(bareMean, "bare-ns/op")
	b.ReportMetric(recvMean/bareMean, "ratio")
	b.ReportMetric(quantileNs(recvLat, 0.50), "p50-ns")
	b.ReportMetric(quantileNs(recvLat, 0.99), "p99-ns")
}

func meanNs(d []time.Duration) float64 {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return float64(sum) / float64(len(d))
}

// quantileNs is the q-quantile of d in nanoseconds (nearest rank).
func quantileNs(d []time.Duration, q float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return float64(s[max(0, min(i, len(s)-1))])
}

// startBenchReceiver runs a receiver with opts until the benchmark ends.
func startBenchReceiver(b *testing.B, opts Options) *Receiver {
	b.Helper()
	r, err := New(b.Context(), opts, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	b.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
		if err := r.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	return r
}
