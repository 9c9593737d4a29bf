package fakegithub_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

func TestComments(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	rc, url := newReceiver(t, http.StatusAccepted)
	s.AddHook(url, "s3cret")
	openPull(t, s, "feature", fakegithub.PullSpec{})
	gh := newClient(t, s)
	ctx := testContext(t)

	posted, err := s.Comment("acme", "widgets", 1, "alice", "flaky\n/retest")
	if err != nil {
		t.Fatal(err)
	}
	reply, resp, err := gh.Issues.CreateComment(ctx, "acme", "widgets", 1, &github.IssueComment{Body: github.Ptr("on it")})
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("CreateComment = %v, %v", resp, err)
	}
	if reply.GetUser().GetLogin() != fakegithub.BotLogin || reply.GetID() == posted.GetID() {
		t.Errorf("reply by %q with id %d (the comment's is %d)", reply.GetUser().GetLogin(), reply.GetID(), posted.GetID())
	}

	t.Run("every_new_comment_is_an_issue_comment_webhook", func(t *testing.T) {
		var got []string
		for _, r := range rc.all() {
			if r.header.Get("X-GitHub-Event") != "issue_comment" {
				continue
			}
			var ev github.IssueCommentEvent
			if err := json.Unmarshal(r.body, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.GetIssue().GetPullRequestLinks() == nil || ev.GetIssue().GetNumber() != 1 || ev.GetRepo().GetFullName() != "acme/widgets" {
				t.Errorf("payload does not name pull request acme/widgets#1: %s", r.body)
			}
			got = append(got, ev.GetAction()+" "+ev.GetComment().GetUser().GetLogin()+": "+ev.GetComment().GetBody())
		}
		want := []string{"created alice: flaky\n/retest", "created " + fakegithub.BotLogin + ": on it"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("issue_comment deliveries (-want +got):\n%s", diff)
		}
	})

	t.Run("payload_builder_matches_the_delivery", func(t *testing.T) {
		payload, err := s.IssueCommentPayload("acme", "widgets", posted.GetID())
		if err != nil {
			t.Fatal(err)
		}
		var ev github.IssueCommentEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.GetComment().GetID() != posted.GetID() || ev.GetSender().GetLogin() != "alice" || ev.GetComment().GetUser().GetType() != "User" {
			t.Errorf("payload = %s", payload)
		}
	})

	t.Run("listed_oldest_first", func(t *testing.T) {
		list, _, err := gh.Issues.ListComments(ctx, "acme", "widgets", 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		var bodies []string
		for _, c := range list {
			bodies = append(bodies, c.GetBody())
		}
		if diff := cmp.Diff([]string{"flaky\n/retest", "on it"}, bodies); diff != "" {
			t.Errorf("comments (-want +got):\n%s", diff)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for name, call := range map[string]func() (*github.Response, error){
			"empty_body": func() (*github.Response, error) {
				_, r, err := gh.Issues.CreateComment(ctx, "acme", "widgets", 1, &github.IssueComment{Body: github.Ptr("")})
				return r, err
			},
			"too_long": func() (*github.Response, error) {
				_, r, err := gh.Issues.CreateComment(ctx, "acme", "widgets", 1, &github.IssueComment{Body: github.Ptr(strings.Repeat("x", 65537))})
				return r, err
			},
			"no_such_pull": func() (*github.Response, error) {
				_, r, err := gh.Issues.CreateComment(ctx, "acme", "widgets", 9, &github.IssueComment{Body: github.Ptr("x")})
				return r, err
			},
			"unknown_reaction": func() (*github.Response, error) {
				_, r, err := gh.Reactions.CreateIssueCommentReaction(ctx, "acme", "widgets", posted.GetID(), "thumbsup")
				return r, err
			},
			"reaction_to_no_comment": func() (*github.Response, error) {
				_, r, err := gh.Reactions.CreateIssueCommentReaction(ctx, "acme", "widgets", 1, "+1")
				return r, err
			},
		} {
			t.Run(name, func(t *testing.T) {
				resp, err := call()
				var ghErr *github.ErrorResponse
				if !errors.As(err, &ghErr) || resp.StatusCode < 400 {
					t.Errorf("got %v, %v; want a GitHub error", resp, err)
				}
			})
		}
	})

	t.Run("a_reaction_is_created_once_per_user_and_content", func(t *testing.T) {
		var codes []int
		for range 2 {
			r, resp, err := gh.Reactions.CreateIssueCommentReaction(ctx, "acme", "widgets", posted.GetID(), "rocket")
			if err != nil {
				t.Fatal(err)
			}
			if r.GetContent() != "rocket" || r.GetUser().GetLogin() != fakegithub.BotLogin {
				t.Errorf("reaction = %+v", r)
			}
			codes = append(codes, resp.StatusCode)
		}
		if diff := cmp.Diff([]int{http.StatusCreated, http.StatusOK}, codes); diff != "" {
			t.Errorf("status codes (-want +got):\n%s", diff)
		}
		if got := s.Reactions("acme", "widgets", posted.GetID()); len(got) != 1 {
			t.Errorf("%d reactions recorded, want 1", len(got))
		}
		if n := s.Comments("acme", "widgets", 1)[0].GetReactions().GetRocket(); n != 1 {
			t.Errorf("the comment counts %d rocket reactions, want 1", n)
		}
	})
}

func TestCommentUndeliveredSendsNoWebhook(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	rc, url := newReceiver(t, http.StatusAccepted)
	s.AddHook(url, "s3cret")
	openPull(t, s, "feature", fakegithub.PullSpec{})
	before := len(rc.all())
	c, err := s.CommentUndelivered("acme", "widgets", 1, "alice", "/ok-to-test")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(rc.all()); got != before {
		t.Errorf("%d deliveries after an undelivered comment, want %d", got, before)
	}
	payload, err := s.IssueCommentPayload("acme", "widgets", c.GetID())
	if err != nil {
		t.Fatal(err)
	}
	var ev github.IssueCommentEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	if !ev.GetComment().GetCreatedAt().Equal(c.GetCreatedAt()) || ev.GetComment().GetCreatedAt().IsZero() {
		t.Errorf("payload created_at %v, want the comment's %v", ev.GetComment().GetCreatedAt(), c.GetCreatedAt())
	}
}
