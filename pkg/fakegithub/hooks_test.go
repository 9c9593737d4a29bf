package fakegithub_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"

	"github.com/go-playground/webhooks/v6/github"
	"github.com/google/go-cmp/cmp"
	gh "github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

// received is one request a test webhook receiver saw.
type received struct {
	header http.Header
	body   []byte
}

// receiver records deliveries and answers them with status.
type receiver struct {
	mu  sync.Mutex
	got []received
}

func newReceiver(t *testing.T, status int) (*receiver, string) {
	t.Helper()
	rc := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading delivery: %v", err)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return rc, srv.URL + "/webhook"
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func TestPullRequestPayload(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	inst := s.Install("acme")
	pr := openPull(t, s, "feature", fakegithub.PullSpec{Title: "Add feature", Author: "alice"})
	payload, err := s.PullRequestPayload("acme", "widgets", 1, "opened")
	if err != nil {
		t.Fatal(err)
	}
	if len(payload) < 10_000 {
		t.Errorf("payload is %d bytes; GitHub's are about 20 KB", len(payload))
	}

	t.Run("decodes_into_go_github_event", func(t *testing.T) {
		var ev gh.PullRequestEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			t.Fatal(err)
		}
		got := []any{ev.GetAction(), ev.GetNumber(), ev.GetPullRequest().GetHead().GetSHA(), ev.GetRepo().GetFullName(),
			ev.GetRepo().GetCloneURL(), ev.GetInstallation().GetID(), ev.GetSender().GetLogin(), ev.GetPullRequest().GetTitle()}
		want := []any{"opened", 1, pr.GetHead().GetSHA(), "acme/widgets", s.URL() + "/acme/widgets.git", inst, "alice", "Add feature"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("event (-want +got):\n%s", diff)
		}
	})

	t.Run("go_playground_parses_and_verifies_it", func(t *testing.T) {
		hook, err := github.New(github.Options.Secret("s3cret"))
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(payload))
		req.Header.Set("X-GitHub-Event", "pull_request")
		req.Header.Set("X-Hub-Signature-256", fakegithub.Signature256("s3cret", payload))
		parsed, err := hook.Parse(req, github.PullRequestEvent)
		if err != nil {
			t.Fatal(err)
		}
		pl, ok := parsed.(github.PullRequestPayload)
		if !ok {
			t.Fatalf("parsed %T, want PullRequestPayload", parsed)
		}
		got := []any{pl.Action, pl.Number, pl.PullRequest.Head.Sha, pl.PullRequest.Head.Ref, pl.PullRequest.Base.Repo.CloneURL,
			pl.Repository.FullName, pl.Installation.ID, pl.PullRequest.User.Login, pl.PullRequest.CreatedAt.IsZero()}
		want := []any{"opened", int64(1), pr.GetHead().GetSHA(), "feature", s.URL() + "/acme/widgets.git",
			"acme/widgets", inst, "alice", false}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("payload (-want +got):\n%s", diff)
		}
	})

	t.Run("synchronize_names_before_and_after", func(t *testing.T) {
		after, err := s.PushPull("acme", "widgets", 1, map[string]string{"x": "y\n"})
		if err != nil {
			t.Fatal(err)
		}
		payload, err := s.PullRequestPayload("acme", "widgets", 1, "synchronize")
		if err != nil {
			t.Fatal(err)
		}
		var ev gh.PullRequestEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.GetBefore() != pr.GetHead().GetSHA() || ev.GetAfter() != after || ev.GetPullRequest().GetHead().GetSHA() != after {
			t.Errorf("before %s after %s head %s; want %s → %s", ev.GetBefore(), ev.GetAfter(), ev.GetPullRequest().GetHead().GetSHA(), pr.GetHead().GetSHA(), after)
		}
	})
}

func TestPingPayload(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	payload, err := s.PingPayload("http://ci.example/webhook")
	if err != nil {
		t.Fatal(err)
	}
	hook, err := github.New(github.Options.Secret("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(payload))
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-Hub-Signature-256", fakegithub.Signature256("s3cret", payload))
	parsed, err := hook.Parse(req, github.PingEvent)
	if err != nil {
		t.Fatal(err)
	}
	pl, ok := parsed.(github.PingPayload)
	if !ok || pl.HookID == 0 || int64(pl.HookID) != pl.Hook.ID || pl.Hook.Config.URL != "http://ci.example/webhook" || int64(pl.Hook.AppID) != s.AppID() {
		t.Errorf("ping = %+v", parsed)
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestDeliver(t *testing.T) {
	t.Parallel()
	rc, url := newReceiver(t, http.StatusAccepted)
	payload := []byte(`{"action":"opened","number":1}`)
	ctx := testContext(t)

	resp, id, err := fakegithub.Deliver(ctx, url, "s3cret", "pull_request", payload)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted || !uuidPattern.MatchString(id) {
		t.Errorf("status %d, id %q; want 202 and a UUID", resp.StatusCode, id)
	}
	if _, err := fakegithub.DeliverWithID(ctx, url, "s3cret", "pull_request", id, payload); err != nil {
		t.Fatal(err)
	}
	got := rc.all()
	if len(got) != 2 {
		t.Fatalf("receiver saw %d deliveries, want 2", len(got))
	}
	mac256 := hmac.New(sha256.New, []byte("s3cret"))
	mac256.Write(payload)
	mac1 := hmac.New(sha1.New, []byte("s3cret"))
	mac1.Write(payload)
	for i, r := range got {
		h := r.header
		checks := map[string]string{
			"X-GitHub-Event":      "pull_request",
			"X-GitHub-Delivery":   id,
			"Content-Type":        "application/json",
			"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(mac256.Sum(nil)),
			"X-Hub-Signature":     "sha1=" + hex.EncodeToString(mac1.Sum(nil)),
		}
		for k, want := range checks {
			if h.Get(k) != want {
				t.Errorf("delivery %d: %s = %q, want %q", i, k, h.Get(k), want)
			}
		}
		if !regexp.MustCompile(`^GitHub-Hookshot/`).MatchString(h.Get("User-Agent")) || h.Get("X-GitHub-Hook-ID") == "" {
			t.Errorf("delivery %d: User-Agent %q, hook id %q", i, h.Get("User-Agent"), h.Get("X-GitHub-Hook-ID"))
		}
		if !bytes.Equal(r.body, payload) {
			t.Errorf("delivery %d body = %s", i, r.body)
		}
	}

	t.Run("no_secret_sends_no_signature", func(t *testing.T) {
		if _, _, err := fakegithub.Deliver(ctx, url, "", "ping", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		last := rc.all()[2]
		if last.header.Get("X-Hub-Signature-256") != "" || last.header.Get("X-Hub-Signature") != "" {
			t.Errorf("unsigned delivery carries signatures: %v", last.header)
		}
	})
}

func TestRegisteredHooks(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	rc, url := newReceiver(t, http.StatusAccepted)
	hookID := s.AddHook(url, "s3cret")
	openPull(t, s, "feature", fakegithub.PullSpec{})
	if _, err := s.PushPull("acme", "widgets", 1, map[string]string{"x": "1\n"}); err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return s.AddLabel("acme", "widgets", 1, "ok-to-test") },
		func() error { return s.AddLabel("acme", "widgets", 1, "ok-to-test") }, // already there: no event
		func() error { return s.ClosePull("acme", "widgets", 1) },
		func() error { return s.ReopenPull("acme", "widgets", 1) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	var events []string
	for _, r := range rc.all() {
		var body struct {
			Action string `json:"action"`
			HookID int64  `json:"hook_id"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		events = append(events, r.header.Get("X-GitHub-Event")+"/"+body.Action)
		if r.header.Get("X-Hub-Signature-256") != fakegithub.Signature256("s3cret", r.body) {
			t.Errorf("%s delivery is not signed with the hook's secret", events[len(events)-1])
		}
	}
	want := []string{"ping/", "pull_request/opened", "pull_request/synchronize", "pull_request/labeled", "pull_request/closed", "pull_request/reopened"}
	if diff := cmp.Diff(want, events); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}

	t.Run("deliveries_are_recorded_and_redelivered_with_the_same_id", func(t *testing.T) {
		ds := s.Deliveries()
		if len(ds) != len(want) || ds[1].StatusCode != http.StatusAccepted || ds[1].HookID != hookID || ds[1].Action != "opened" {
			t.Fatalf("deliveries = %+v", ds)
		}
		resp, err := s.Redeliver(testContext(t), ds[1].ID)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("Redeliver = %v, %v", resp, err)
		}
		all := rc.all()
		if got := all[len(all)-1].header.Get("X-GitHub-Delivery"); got != ds[1].ID {
			t.Errorf("redelivery id %q, want %q", got, ds[1].ID)
		}
		if last := s.Deliveries()[len(ds)]; !last.Redelivery || last.ID != ds[1].ID {
			t.Errorf("redelivery recorded as %+v", last)
		}
	})

	t.Run("failed_delivery_is_recorded_not_retried", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		downURL := down.URL
		down.Close()
		s.AddHook(downURL, "s3cret")
		before := len(rc.all())
		if err := s.RemoveLabel("acme", "widgets", 1, "ok-to-test"); err != nil {
			t.Fatal(err)
		}
		var failed int
		for _, d := range s.Deliveries() {
			if d.URL == downURL {
				if d.Err == nil || d.StatusCode != 0 {
					t.Errorf("delivery to a stopped receiver recorded as %+v", d)
				}
				failed++
			}
		}
		if failed != 2 || len(rc.all()) != before+1 {
			t.Errorf("%d failed deliveries (want ping + unlabeled), live receiver got %d new (want 1)", failed, len(rc.all())-before)
		}
	})
}
