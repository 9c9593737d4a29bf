package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/events"
)

// seeds returns every testdata payload, compacted, with the event it
// belongs to, and for pull requests also a slim copy holding only the
// fields YourCI reads: small inputs let the fuzzer mutate what matters.
func seeds(f *testing.F) map[string][]byte {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(names) == 0 {
		f.Fatalf("listing testdata: %v (%d files)", err, len(names))
	}
	out := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatalf("reading seed: %v", err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, b); err != nil {
			f.Fatalf("compacting seed %s: %v", n, err)
		}
		name := filepath.Base(n)
		out[name] = compact.Bytes()
		if name == "ping.json" {
			continue
		}
		pd, err := decodePull(b)
		if err != nil {
			f.Fatalf("decoding seed %s: %v", n, err)
		}
		slim, err := json.Marshal(pd)
		if err != nil {
			f.Fatalf("encoding slim seed %s: %v", n, err)
		}
		out["slim_"+name] = slim
	}
	return out
}

// checkEvent fails unless ev could safely become a NATS subject, a
// workspace path and a git argument. It restates the rules independently
// of the code under test.
func checkEvent(t *testing.T, ev events.PullEvent) {
	t.Helper()
	if ev.Version != events.Version || ev.Number < 1 || ev.Installation < 0 {
		t.Fatalf("event with bad version, number or installation: %+v", ev)
	}
	if len(ev.HeadSHA) != 40 && len(ev.HeadSHA) != 64 || strings.Trim(ev.HeadSHA, "0123456789abcdef") != "" {
		t.Fatalf("event with head sha %q", ev.HeadSHA)
	}
	const nameChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
	for _, n := range []string{ev.Repo.Owner, ev.Repo.Name} {
		if n == "" || len(n) > 100 || strings.Trim(n, nameChars) != "" || n == "." || n == ".." || n[0] == '-' {
			t.Fatalf("event with unsafe name %q", n)
		}
	}
	if len(ev.Pull) > events.MaxPullLen || len(ev.Pull) > 0 && (!json.Valid(ev.Pull) || ev.Pull[0] != '{') {
		t.Fatalf("event carries a pull request that is no bounded JSON object: %.80q", ev.Pull)
	}
	if ev.Delivery == "" || len(ev.Delivery) > 128 || strings.ContainsAny(ev.Delivery, " \t\r\n\x00*>/") {
		t.Fatalf("event with unsafe delivery id %q", ev.Delivery)
	}
}

func FuzzPullEventFrom(f *testing.F) {
	for name, body := range seeds(f) {
		if name != "ping.json" {
			f.Add(body, testDelivery, DefaultApprovalLabel)
		}
	}
	f.Add([]byte(`{"action":"opened","number":1,"pull_request":{"head":{"sha":"`+head1+`"}},"repository":{"name":"a.*","owner":{"login":"b >"}}}`), "x", "")
	f.Fuzz(func(t *testing.T, body []byte, delivery, label string) {
		ev, err := PullEventFrom(body, delivery, label)
		if err != nil {
			var bad *BadRequestError
			if !errors.Is(err, ErrIgnored) && !errors.As(err, &bad) {
				t.Fatalf("error %v is neither ignored nor a bad request", err)
			}
			if !reflect.DeepEqual(ev, events.PullEvent{}) {
				t.Fatalf("event %+v returned with error %v", ev, err)
			}
			return
		}
		checkEvent(t, ev)
		if len(ev.Pull) > 0 && !bytes.Contains(body, ev.Pull) {
			t.Fatalf("carried pull request %q is not part of the delivered body", ev.Pull)
		}
		if ev.Delivery != delivery {
			t.Fatalf("delivery %q became %q", delivery, ev.Delivery)
		}
	})
}

// FuzzHandler sends random bodies, event names and delivery ids, signed or
// not. Run it with a short -fuzzminimizetime: minimizing a 26 KB input can
// otherwise stall the run for the default minute.
func FuzzHandler(f *testing.F) {
	for name, body := range seeds(f) {
		event := "pull_request"
		if strings.HasSuffix(name, "ping.json") {
			event = "ping"
		}
		f.Add(body, event, testDelivery, true)
		f.Add(body, event, testDelivery, false)
	}
	f.Add([]byte(`{"action":"opened"`), "pull_request", testDelivery, true)
	for _, name := range []string{"checks_requested.json", "destroyed.json"} {
		f.Add(fixture(f, "merge_group/"+name), "merge_group", testDelivery, true)
	}
	f.Add([]byte(`{}`), "push", "", true)
	f.Add([]byte{}, "", "", false)
	f.Fuzz(func(t *testing.T, body []byte, event, delivery string, sign bool) {
		pub := &recorder{}
		h := newTestHandler(t, pub)
		rq := request{event: event, delivery: delivery, body: body}
		if sign {
			rq.signature = signature(testSecret, body)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, rq.build())

		if w.Code >= 500 {
			t.Fatalf("status %d from a publisher that never fails: %s", w.Code, w.Body)
		}
		if !sign && w.Code < 300 {
			t.Fatalf("unsigned delivery answered %d", w.Code)
		}
		var a answer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatalf("answer is not JSON: %v", err)
		}
		got := pub.events()
		switch {
		case len(got) > 1:
			t.Fatalf("one delivery published %d events", len(got))
		case len(got) == 1 && (w.Code != 202 || a.Result != "queued"):
			t.Fatalf("published, but answered %d %+v", w.Code, a)
		case len(got) == 0 && a.Result == "queued":
			t.Fatalf("answered queued without publishing")
		case len(got) == 1:
			checkEvent(t, got[0])
		}
	})
}

// addTestdata seeds f with every testdata payload as it is stored.
func addTestdata(f *testing.F) {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}
