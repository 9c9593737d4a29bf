package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
)

func TestFairOrder(t *testing.T) {
	t.Parallel()
	a, b, c := events.Repo{Owner: "o", Name: "a"}, events.Repo{Owner: "o", Name: "b"}, events.Repo{Owner: "p", Name: "c"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		shares []events.RepoShare
		want   []events.Repo
	}{
		{
			name: "fewest_held_first_however_long_the_backlog",
			shares: []events.RepoShare{
				{Repo: a, Stored: 80, Held: 2},
				{Repo: b, Stored: 1, Held: 0},
			},
			want: []events.Repo{b, a},
		},
		{
			name: "repository_at_its_cap_is_skipped",
			shares: []events.RepoShare{
				{Repo: a, Stored: 80, Held: 2, Limit: events.RepoLimit{MaxRunning: 2}},
				{Repo: b, Stored: 5, Held: 3},
			},
			want: []events.Repo{b},
		},
		{
			name: "below_its_cap_it_competes",
			shares: []events.RepoShare{
				{Repo: a, Stored: 80, Held: 1, Limit: events.RepoLimit{MaxRunning: 2}},
				{Repo: b, Stored: 5, Held: 3},
			},
			want: []events.Repo{a, b},
		},
		{
			name: "tie_goes_to_the_one_served_longest_ago",
			shares: []events.RepoShare{
				{Repo: a, Stored: 3, Held: 1, LastServed: t0.Add(2 * time.Second)},
				{Repo: b, Stored: 3, Held: 1, LastServed: t0.Add(time.Second)},
				{Repo: c, Stored: 3, Held: 1},
			},
			want: []events.Repo{c, b, a},
		},
		{
			name: "tie_never_served_goes_by_name",
			shares: []events.RepoShare{
				{Repo: c, Stored: 1},
				{Repo: b, Stored: 1},
				{Repo: a, Stored: 1},
			},
			want: []events.Repo{a, b, c},
		},
		{
			name: "weight_divides_what_is_held",
			shares: []events.RepoShare{
				{Repo: a, Stored: 9, Held: 3, Limit: events.RepoLimit{Weight: 4}},
				{Repo: b, Stored: 9, Held: 1},
			},
			want: []events.Repo{a, b},
		},
		{
			name: "weight_below_one_counts_as_one",
			shares: []events.RepoShare{
				{Repo: a, Stored: 9, Held: 2, Limit: events.RepoLimit{Weight: 0}},
				{Repo: b, Stored: 9, Held: 1, Limit: events.RepoLimit{Weight: -3}},
			},
			want: []events.Repo{b, a},
		},
		{
			name: "every_job_held_still_tried_last",
			shares: []events.RepoShare{
				{Repo: a, Stored: 2, Held: 2},
				{Repo: b, Stored: 4, Held: 1},
			},
			want: []events.Repo{b, a},
		},
		{name: "nothing_stored", shares: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := events.FairOrder(tt.shares)
			var repos []events.Repo
			for i, s := range got {
				repos = append(repos, s.Repo)
				if s.Place != i+1 {
					t.Errorf("%s has place %d at index %d", s.Repo.FullName(), s.Place, i)
				}
			}
			if diff := cmp.Diff(tt.want, repos); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRepoLimits(t *testing.T) {
	t.Parallel()
	def := events.RepoLimit{MaxRunning: 4}
	tests := []struct {
		name    string
		text    string
		want    map[events.Repo]events.RepoLimit
		wantErr []string
	}{
		{
			name: "settings_comments_and_defaults",
			text: "# shared licence server\nacme/mono max_running=2 weight=3\n\nacme/docs weight=2 # small\nacme/web\n",
			want: map[events.Repo]events.RepoLimit{
				{Owner: "acme", Name: "mono"}: {MaxRunning: 2, Weight: 3},
				{Owner: "acme", Name: "docs"}: {MaxRunning: 4, Weight: 2},
				{Owner: "acme", Name: "web"}:  {MaxRunning: 4},
			},
		},
		{
			name: "zero_lifts_the_default_cap",
			text: "acme/mono max_running=0\n",
			want: map[events.Repo]events.RepoLimit{{Owner: "acme", Name: "mono"}: {}},
		},
		{
			name: "every_bad_line_reported",
			text: "acme\nacme/x max_runing=2\nacme/y weight=0\nacme/z max_running=-1\nacme/w weight=two\nacme/v\nacme/v\n../etc max_running=1\n",
			wantErr: []string{"line 1:", "line 2: unknown setting", "line 3: weight=0", "line 4: max_running=-1",
				"line 5: weight", "line 7: acme/v is named twice", "line 8:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := events.ParseRepoLimits(strings.NewReader(tt.text), def)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.PerRepo); diff != "" {
				t.Errorf("limits (-want +got):\n%s", diff)
			}
			if got.Default != def {
				t.Errorf("default %+v, want %+v", got.Default, def)
			}
			if l := got.For(events.Repo{Owner: "other", Name: "repo"}); l != def {
				t.Errorf("an unnamed repository gets %+v, want the default %+v", l, def)
			}
		})
	}
}

func TestTestConsumerForIsOnePerRepository(t *testing.T) {
	t.Parallel()
	repos := []events.Repo{
		{Owner: "a_b", Name: "c"}, {Owner: "a", Name: "b_c"}, {Owner: "a", Name: "b.c"}, {Owner: "a.b", Name: "c"},
		{Owner: "x", Name: strings.Repeat(".", 100)}, {Owner: "x", Name: strings.Repeat(".", 99) + "-"},
	}
	seen := map[string]events.Repo{}
	for _, r := range repos {
		name := events.TestConsumerFor(r)
		if prev, ok := seen[name]; ok {
			t.Errorf("%s and %s share consumer %s", prev.FullName(), r.FullName(), name)
		}
		seen[name] = r
		if len(name) > 200 || strings.ContainsAny(name, ".*> /\\") {
			t.Errorf("consumer name %q of %s is not a usable durable name", name, r.FullName())
		}
	}
}
