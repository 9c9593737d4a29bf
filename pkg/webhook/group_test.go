package webhook

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

const (
	groupHead = "4fd5a3c0a7f9b5d31e2c8e0f9a6b7c8d9e0f1a2b"
	groupBase = "9b1e2d3c4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c"
)

// groupFixture is a merge_group fixture with edit applied to its decoded
// JSON, re-encoded.
func groupFixture(tb testing.TB, name string, edit func(map[string]any)) []byte {
	tb.Helper()
	body := fixture(tb, "merge_group/"+name)
	if edit == nil {
		return body
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		tb.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func setGroup(field string, v any) func(map[string]any) {
	return func(m map[string]any) { m["merge_group"].(map[string]any)[field] = v }
}

func TestGroupEventFrom(t *testing.T) {
	t.Parallel()
	number, err := events.GroupNumber(groupHead)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("checks_requested_builds_the_group_head", func(t *testing.T) {
		t.Parallel()
		ge, err := GroupEventFrom(groupFixture(t, "checks_requested.json", nil), testDelivery)
		if err != nil {
			t.Fatal(err)
		}
		ev := ge.Event
		if ge.Destroyed || ev.Number != number || ev.HeadSHA != groupHead || ev.Installation != 31337 ||
			ev.Repo != (events.Repo{Owner: "yourci-test", Name: "widgets"}) || ev.Delivery != testDelivery {
			t.Fatalf("event %+v", ev)
		}
		if want := time.Date(2026, 11, 21, 11, 15, 7, 0, time.UTC); !ev.PullUpdatedAt.Equal(want) {
			t.Errorf("updated at %v, want the head commit's timestamp %v", ev.PullUpdatedAt, want)
		}
		checkEvent(t, ev)
		// What .yci.py reads: the same members as a pull request's,
		// and the merge group itself.
		var pull struct {
			Number *int   `json:"number"`
			Title  string `json:"title"`
			State  string `json:"state"`
			Head   struct {
				SHA, Ref string
				Repo     struct {
					CloneURL string `json:"clone_url"`
				}
			}
			Base struct {
				SHA, Ref string
				Repo     struct {
					CloneURL string `json:"clone_url"`
				}
			}
			MergeGroup struct {
				HeadRef string `json:"head_ref"`
			} `json:"merge_group"`
		}
		if err := json.Unmarshal(ev.Pull, &pull); err != nil {
			t.Fatal(err)
		}
		if pull.Number != nil || pull.State != "open" || pull.Title != pull.Head.Ref || pull.Head.SHA != groupHead || pull.Base.SHA != groupBase ||
			pull.Base.Ref != "main" || !strings.HasPrefix(pull.Head.Ref, "gh-readonly-queue/main/pr-42-") ||
			pull.Base.Repo.CloneURL != "https://github.com/yourci-test/widgets.git" ||
			pull.MergeGroup.HeadRef != "refs/heads/"+pull.Head.Ref {
			t.Errorf("pull object %s", ev.Pull)
		}
	})
	t.Run("destroyed_names_the_group_to_stop", func(t *testing.T) {
		t.Parallel()
		ge, err := GroupEventFrom(groupFixture(t, "destroyed.json", nil), testDelivery)
		if err != nil {
			t.Fatal(err)
		}
		if !ge.Destroyed || ge.Reason != "merged" || ge.Event.Number != number || ge.Event.HeadSHA != groupHead ||
			!ge.Event.PullUpdatedAt.Equal(events.GroupDestroyedAt) || len(ge.Event.Pull) != 0 {
			t.Errorf("got %+v", ge)
		}
	})
	refused := []struct {
		name, field string
		edit        func(map[string]any)
	}{
		{"head_sha_not_hex", "merge_group.head_sha", setGroup("head_sha", strings.ToUpper(groupHead))},
		{"base_sha_missing", "merge_group.base_sha", setGroup("base_sha", "")},
		{"head_ref_outside_the_queue", "merge_group.head_ref", setGroup("head_ref", "refs/heads/main")},
		{"head_ref_with_dotdot", "merge_group.head_ref", setGroup("head_ref", "refs/heads/gh-readonly-queue/../x")},
		{"base_ref_not_a_branch", "merge_group.head_ref", setGroup("base_ref", "refs/tags/v1")},
		{"no_timestamp", "merge_group.head_commit.timestamp", setGroup("head_commit", map[string]any{})},
		{"bad_owner", "repository.owner.login", func(m map[string]any) {
			m["repository"].(map[string]any)["owner"].(map[string]any)["login"] = "../x"
		}},
		{"negative_installation", "installation.id", func(m map[string]any) { m["installation"] = map[string]any{"id": -1} }},
		{"group_not_an_object", "merge_group", func(m map[string]any) { m["merge_group"] = "x" }},
	}
	for _, tt := range refused {
		t.Run("refuses_"+tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := GroupEventFrom(groupFixture(t, "checks_requested.json", tt.edit), testDelivery)
			var bad *BadRequestError
			if !errors.As(err, &bad) || bad.Field != tt.field {
				t.Errorf("err = %v, want a bad request naming %s", err, tt.field)
			}
		})
	}
	t.Run("other_action_is_ignored", func(t *testing.T) {
		t.Parallel()
		_, err := GroupEventFrom(groupFixture(t, "checks_requested.json", func(m map[string]any) { m["action"] = "created" }), testDelivery)
		if !errors.Is(err, ErrIgnored) {
			t.Errorf("err = %v, want ignored", err)
		}
	})
}

func TestHandlerMergeGroup(t *testing.T) {
	t.Parallel()
	number, err := events.GroupNumber(groupHead)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("checks_requested_is_recorded_and_published", func(t *testing.T) {
		t.Parallel()
		pub := &recorder{}
		book := &headBook{pub: pub}
		h := newTestHandler(t, pub, WithHeadRecorder(book))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, signed("merge_group", groupFixture(t, "checks_requested.json", nil)).build())
		if w.Code != http.StatusAccepted {
			t.Fatalf("answered %d: %s", w.Code, w.Body)
		}
		got := pub.events()
		if len(got) != 1 || got[0].Number != number || got[0].HeadSHA != groupHead {
			t.Fatalf("published %+v", got)
		}
		if len(book.got) != 1 || book.got[0].Closed || book.got[0].SHA != groupHead || book.late[0] {
			t.Errorf("head records %+v (late %v), want the group's head before publishing", book.got, book.late)
		}
	})
	t.Run("destroyed_records_and_announces_and_publishes_nothing", func(t *testing.T) {
		t.Parallel()
		pub, heads := &recorder{}, &announcer{}
		book := &headBook{pub: pub}
		h := newTestHandler(t, pub, WithHeadRecorder(book), WithHeadAnnouncer(heads))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, signed("merge_group", groupFixture(t, "destroyed.json", nil)).build())
		if w.Code != http.StatusAccepted || !strings.Contains(w.Body.String(), "merge group destroyed") {
			t.Fatalf("answered %d: %s", w.Code, w.Body)
		}
		if n := len(pub.events()); n != 0 {
			t.Errorf("published %d events", n)
		}
		if len(book.got) != 1 || !book.got[0].Closed || !book.got[0].UpdatedAt.Equal(events.GroupDestroyedAt) {
			t.Errorf("head records %+v, want the group closed for good", book.got)
		}
		if len(heads.got) != 1 || !heads.got[0].Closed || heads.got[0].Number != number {
			t.Errorf("announcements %+v, want the group closed", heads.got)
		}
	})
	t.Run("unsigned_destroyed_stops_nothing", func(t *testing.T) {
		t.Parallel()
		pub, heads := &recorder{}, &announcer{}
		h := newTestHandler(t, pub, WithHeadAnnouncer(heads))
		rq := signed("merge_group", groupFixture(t, "destroyed.json", nil))
		rq.signature = signature("wrong secret", rq.body)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, rq.build())
		if w.Code != http.StatusUnauthorized || len(heads.got) != 0 {
			t.Errorf("answered %d, announced %+v", w.Code, heads.got)
		}
	})
}

// FuzzGroupEventFrom holds GroupEventFrom to its promise: a bad request
// or an ignored action, or an event as safe as a pull request's, whose
// number is its head's.
func FuzzGroupEventFrom(f *testing.F) {
	for _, name := range []string{"checks_requested.json", "destroyed.json"} {
		f.Add(fixture(f, "merge_group/"+name), testDelivery)
	}
	f.Add([]byte(`{"action":"checks_requested","merge_group":{"head_sha":"`+groupHead+`","head_ref":"refs/heads/gh-readonly-queue/x","base_ref":"refs/heads/x","base_sha":"`+groupBase+`","head_commit":{"timestamp":"2026-01-01T00:00:00Z"}},"repository":{"name":"r","owner":{"login":"o"}}}`), "x")
	f.Fuzz(func(t *testing.T, body []byte, delivery string) {
		ge, err := GroupEventFrom(body, delivery)
		if err != nil {
			var bad *BadRequestError
			if !errors.Is(err, ErrIgnored) && !errors.As(err, &bad) {
				t.Fatalf("error %v is neither ignored nor a bad request", err)
			}
			return
		}
		checkEvent(t, ge.Event)
		if n, err := events.GroupNumber(ge.Event.HeadSHA); err != nil || n != ge.Event.Number {
			t.Fatalf("group number %d is not head %s's (%d, %v)", ge.Event.Number, ge.Event.HeadSHA, n, err)
		}
		if !ge.Destroyed && (len(ge.Event.Pull) == 0 || ge.Event.PullUpdatedAt.IsZero()) {
			t.Fatalf("a group to build carries no pull object: %+v", ge.Event)
		}
	})
}
