package fakegithub_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

func TestIssueEventsNameWhoLabeled(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	pr := openPull(t, s, "feature", fakegithub.PullSpec{Author: "outsider", Labels: []string{"wip"}})
	n := pr.GetNumber()
	if err := s.AddLabelAs("acme", "widgets", n, "OK-To-Test", "triager"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddLabel("acme", "widgets", n, "bug"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveLabel("acme", "widgets", n, "wip"); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s)
	type row struct{ Event, Actor, Label string }
	var got []row
	opts := &github.ListOptions{PerPage: 2}
	for {
		list, resp, err := c.Issues.ListIssueEvents(testContext(t), "acme", "widgets", n, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list {
			if e.GetCreatedAt().IsZero() || e.GetID() == 0 {
				t.Errorf("event %+v has no id or time", e)
			}
			got = append(got, row{e.GetEvent(), e.GetActor().GetLogin(), e.GetLabel().GetName()})
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	want := []row{
		{"labeled", "outsider", "wip"},
		{"labeled", "triager", "OK-To-Test"},
		{"labeled", "acme", "bug"},
		{"unlabeled", "acme", "wip"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("issue events (-want +got):\n%s", diff)
	}
}

func TestPullWithoutDescriptionHasNullBody(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	bare := openPull(t, s, "bare", fakegithub.PullSpec{})
	described := openPull(t, s, "described", fakegithub.PullSpec{Body: "Fixes #1"})
	tests := []struct {
		name   string
		number int
		body   string
	}{
		{"no_description_is_null", bare.GetNumber(), "null"},
		{"description_is_a_string", described.GetNumber(), `"Fixes #1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, s)
			req, err := c.NewRequest(testContext(t), http.MethodGet, "repos/acme/widgets/pulls/"+strconv.Itoa(tt.number), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			raw, ok := m["body"]
			if !ok || string(raw) != tt.body {
				t.Errorf("body = %s (present %v), want %s", raw, ok, tt.body)
			}
			if string(m["merged_at"]) != "null" {
				t.Errorf("merged_at = %s, want null", m["merged_at"])
			}
		})
	}
}
