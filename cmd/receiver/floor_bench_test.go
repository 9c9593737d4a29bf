package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/natsserver"
	"github.com/yourci/yourci/pkg/webhook"
)

// floorPull is what the minimal receiver decodes of a delivery.
type floorPull struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest struct {
		Head struct {
			SHA string `json:"sha"`
		} `json:"head"`
	} `json:"pull_request"`
	Repository struct {
		Name  string `json:"name"`
		Owner struct {
			Login string `json:"login"`
		} `json:"owner"`
	} `json:"repository"`
}

// floorReceiver is the least a receiver that keeps its promise can do:
// one HMAC, one decode, one JetStream publish awaited, then 202. It is the
// yardstick of issue 17's item 5, not a receiver to run.
func floorReceiver(js jetstream.JetStream) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := readSigned(w, r, webhook.MaxBodyBytes)
		if !ok {
			return
		}
		var p floorPull
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		ev, err := json.Marshal(events.PullEvent{Version: events.Version, Repo: events.Repo{Owner: p.Repository.Owner.Login, Name: p.Repository.Name},
			Number: p.Number, HeadSHA: p.PullRequest.Head.SHA, Delivery: r.Header.Get("X-GitHub-Delivery")})
		if err != nil {
			http.Error(w, "encoding", http.StatusInternalServerError)
			return
		}
		subject := events.PullSubject(events.Repo{Owner: p.Repository.Owner.Login, Name: p.Repository.Name})
		if _, err := js.Publish(r.Context(), subject, ev, jetstream.WithMsgID(r.Header.Get("X-GitHub-Delivery"))); err != nil {
			http.Error(w, "queue unavailable", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// Deliveries per round and senders at once in BenchmarkReceiverFloor.
const (
	floorRound   = 64
	floorSenders = 8
)

// BenchmarkReceiverFloor sends rounds of signed ~26 KB pull_request
// deliveries, floorSenders at a time, alternately to the receiver and to
// floorReceiver, both publishing to the same embedded JetStream (file
// storage), and reports each one's acknowledged deliveries per second and
// the receiver's share of the floor's (issue 17 asks for 80%).
func BenchmarkReceiverFloor(b *testing.B) {
	opts := Options{
		Listen: "127.0.0.1:0", WebhookSecret: testSecret, NATS: natsserver.Endpoint{Store: b.TempDir(), Port: -1},
		ApprovalLabel: "ok-to-test", PublishTimeout: webhook.DefaultPublishTimeout, ShutdownTimeout: 10 * time.Second, MaxInflightBytes: webhook.DefaultMaxInflightBytes,
	}
	r := startBenchReceiver(b, opts)
	nc, err := nats.Connect(r.NATSURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	floor := httptest.NewServer(floorReceiver(js))
	defer floor.Close()

	body := opened(b)
	sig := sign(body)
	var recvTime, floorTime time.Duration
	round := 0
	for b.Loop() {
		round++
		recvTime += sendRound(b, "http://"+r.Addr()+"/webhook", fmt.Sprintf("recv-%d", round), body, sig)
		floorTime += sendRound(b, floor.URL, fmt.Sprintf("floor-%d", round), body, sig)
	}
	recvRate := float64(round*floorRound) / recvTime.Seconds()
	floorRate := float64(round*floorRound) / floorTime.Seconds()
	b.ReportMetric(recvRate, "receiver-acks/s")
	b.ReportMetric(floorRate, "floor-acks/s")
	b.ReportMetric(100*recvRate/floorRate, "%-of-floor")
}

// sendRound posts floorRound deliveries to url, floorSenders at once, each
// with its own delivery id, fails unless every one is answered 202, and
// returns how long the round took.
func sendRound(b *testing.B, url, prefix string, body []byte, sig string) time.Duration {
	var wg sync.WaitGroup
	errs := make(chan error, floorRound)
	next := make(chan int, floorRound)
	for i := range floorRound {
		next <- i
	}
	close(next)
	start := time.Now()
	for range floorSenders {
		wg.Go(func() {
			for i := range next {
				if err := postOne(url, fmt.Sprintf("%s-%d", prefix, i), body, sig); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return took
}

func postOne(url, delivery string, body []byte, sig string) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("reading answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s answered %d, want 202", url, resp.StatusCode)
	}
	return nil
}
