package fakegithub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"
)

// TestAPIDelay holds answers back by an hour, far past a client's
// patience, so what is delayed is told apart from what is not without
// measuring time.
func TestAPIDelay(t *testing.T) {
	t.Parallel()
	const long, patience = time.Hour, 300 * time.Millisecond
	tests := []struct {
		name                   string
		api, write             time.Duration
		setWrite               bool
		wantReadLate, wantLate bool // read and write answered past patience
	}{
		{"api_delay_holds_reads_and_writes", long, 0, false, true, true},
		{"write_delay_replaces_it_for_writes", long, 0, true, true, false},
		{"writes_alone_can_be_delayed", 0, long, true, false, true},
		{"negative_write_delay_follows_the_api_again", long, -1, true, true, true},
		{"no_delay", 0, 0, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			sha := seed(t, s)
			s.SetAPIDelay(tt.api)
			if tt.setWrite {
				s.SetWriteDelay(tt.write)
			}
			ctx, cancel := context.WithTimeout(testContext(t), patience)
			defer cancel()
			_, _, err := newClient(t, s).Repositories.Get(ctx, "acme", "widgets")
			if late := errors.Is(err, context.DeadlineExceeded); late != tt.wantReadLate || !late && err != nil {
				t.Errorf("read: %v; want late=%v", err, tt.wantReadLate)
			}
			ctx, cancel = context.WithTimeout(testContext(t), patience)
			defer cancel()
			status := github.RepoStatus{State: github.Ptr("pending"), Context: github.Ptr("yci/a")}
			_, _, err = newClient(t, s).Repositories.CreateStatus(ctx, "acme", "widgets", sha, status)
			if late := errors.Is(err, context.DeadlineExceeded); late != tt.wantLate || !late && err != nil {
				t.Errorf("write: %v; want late=%v", err, tt.wantLate)
			}
		})
	}
}

func TestRequestsSince(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	sha := seed(t, s)
	ctx := testContext(t)
	c := newClient(t, s)
	if _, _, err := c.Repositories.Get(ctx, "acme", "widgets"); err != nil {
		t.Fatal(err)
	}
	mark := time.Now()
	if _, _, err := c.Repositories.CreateStatus(ctx, "acme", "widgets", sha, github.RepoStatus{State: github.Ptr("success"), Context: github.Ptr("yci/a")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Repositories.ListStatuses(ctx, "acme", "widgets", sha, nil); err != nil {
		t.Fatal(err)
	}
	got := s.RequestsSince(mark)
	if len(got) != 2 || !got[0].Write || got[0].Route != "POST /repos/{owner}/{repo}/statuses/{sha}" ||
		got[1].Write || got[1].Method != "GET" || got[0].At.Before(mark) || got[1].At.Before(got[0].At) {
		t.Errorf("requests since the mark: %+v; want the status write, then the read", got)
	}
}
