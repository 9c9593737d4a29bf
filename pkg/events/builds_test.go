package events_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
)

// claim is one ClaimBuild answer.
type claim struct {
	Build int
	Fresh bool
}

func TestClaimBuild(t *testing.T) {
	t.Parallel()
	eachServer(t, func(t *testing.T, srv testServer) {
		opts := fastOptions(t)
		boxes := []*events.Bus{newBus(t, srv.URL(), opts), newBus(t, srv.URL(), opts)}
		ctx := testContext(t)
		repo := events.Repo{Owner: "my_org", Name: "a.repo"}

		t.Run("racing_claims_for_new_commits_get_distinct_numbers_without_gaps", func(t *testing.T) {
			const n = 8
			builds := make([]int, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					var fresh bool
					builds[i], fresh, errs[i] = boxes[i%2].Registry().ClaimBuild(ctx, repo, 1, fmt.Sprintf("sha%d", i), false)
					if errs[i] == nil && !fresh {
						errs[i] = fmt.Errorf("claim %d not fresh", i)
					}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			slices.Sort(builds)
			if diff := cmp.Diff([]int{1, 2, 3, 4, 5, 6, 7, 8}, builds); diff != "" {
				t.Errorf("build numbers (-want +got):\n%s", diff)
			}
		})

		t.Run("racing_claims_for_one_commit_build_it_once", func(t *testing.T) {
			const n = 8
			claims := make([]claim, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					claims[i].Build, claims[i].Fresh, errs[i] = boxes[i%2].Registry().ClaimBuild(ctx, repo, 2, "same", false)
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			want := slices.Repeat([]claim{{1, false}}, n-1)
			want = append(want, claim{1, true})
			slices.SortFunc(claims, func(a, b claim) int {
				if a.Fresh == b.Fresh {
					return 0
				}
				if a.Fresh {
					return 1
				}
				return -1
			})
			if diff := cmp.Diff(want, claims); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})

		t.Run("sequence_of_pushes_and_rebuilds", func(t *testing.T) {
			steps := []struct {
				sha     string
				rebuild bool
				want    claim
			}{
				{"aaa", false, claim{1, true}},
				{"aaa", false, claim{1, false}}, // webhook redelivered, or reconcile
				{"bbb", false, claim{2, true}},  // new push
				{"aaa", false, claim{1, false}}, // force-push back
				{"bbb", true, claim{3, true}},   // asked to rebuild
				{"bbb", false, claim{3, false}}, // the rebuild is now its build
			}
			var got, want []claim
			for _, s := range steps {
				build, fresh, err := boxes[0].Registry().ClaimBuild(ctx, repo, 3, s.sha, s.rebuild)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, claim{build, fresh})
				want = append(want, s.want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}

			for sha, wantBuild := range map[string]int{"aaa": 1, "bbb": 3, "ccc": 0} {
				build, ok, err := boxes[1].Registry().BuildOf(ctx, repo, 3, sha)
				if err != nil {
					t.Fatal(err)
				}
				if build != wantBuild || ok != (wantBuild != 0) {
					t.Errorf("BuildOf(%s) = %d, %v, want %d", sha, build, ok, wantBuild)
				}
			}
		})

		t.Run("build_claim_names_the_claimant", func(t *testing.T) {
			reg := boxes[0].Registry()
			if _, err := reg.ClaimBuildFor(ctx, repo, 5, "ddd", "push-1", false); err != nil {
				t.Fatal(err)
			}
			c, err := reg.ClaimBuildFor(ctx, repo, 5, "ddd", "retest-1", true)
			if err != nil {
				t.Fatal(err)
			}
			build, by, ok, err := boxes[1].Registry().BuildClaim(ctx, repo, 5, "ddd")
			if err != nil || !ok || build != c.Build || by != "retest-1" {
				t.Errorf("BuildClaim after a rebuild = %d, %q, %v, %v; want %d by retest-1", build, by, ok, err, c.Build)
			}
			if _, _, ok, err := reg.BuildClaim(ctx, repo, 5, "eee"); ok || err != nil {
				t.Errorf("BuildClaim of an unbuilt head = %v, %v; want none", ok, err)
			}
		})

		t.Run("pull_requests_and_repositories_are_numbered_apart", func(t *testing.T) {
			other := events.Repo{Owner: "my", Name: "org.a.repo"}
			build, fresh, err := boxes[0].Registry().ClaimBuild(ctx, other, 1, "sha0", false)
			if err != nil || build != 1 || !fresh {
				t.Errorf("first claim on another repository = %d, %v, %v; want 1, true", build, fresh, err)
			}
			if build, ok, err := boxes[0].Registry().BuildOf(ctx, repo, 99, "sha0"); err != nil || ok || build != 0 {
				t.Errorf("BuildOf a pull request never built = %d, %v, %v; want none", build, ok, err)
			}
		})

		t.Run("incomplete_keys_are_refused", func(t *testing.T) {
			if _, _, err := boxes[0].Registry().ClaimBuild(ctx, repo, 0, "sha", false); !errors.Is(err, events.ErrInvalidEvent) {
				t.Errorf("ClaimBuild of pull 0 = %v, want ErrInvalidEvent", err)
			}
			if _, _, err := boxes[0].Registry().BuildOf(ctx, events.Repo{}, 1, "sha"); !errors.Is(err, events.ErrInvalidEvent) {
				t.Errorf("BuildOf without repository = %v, want ErrInvalidEvent", err)
			}
			if _, _, err := boxes[0].Registry().ClaimBuild(ctx, events.Repo{Owner: "my.org", Name: "a"}, 1, "sha", false); !errors.Is(err, events.ErrInvalidEvent) {
				t.Errorf("ClaimBuild for owner my.org = %v, want ErrInvalidEvent", err)
			}
		})
	})
}

func TestClaimBuildForLetsOnlyItsClaimantResume(t *testing.T) {
	eachServer(t, func(t *testing.T, srv testServer) {
		ctx := testContext(t)
		b := newBus(t, srv.URL(), fastOptions(t))
		repo := events.Repo{Owner: "acme", Name: "widgets"}
		steps := []struct {
			name, claimant string
			rebuild, mark  bool
			want           events.Claim
		}{
			{name: "first_message_claims", claimant: "m1", want: events.Claim{Build: 1, Mine: true, Fresh: true}},
			{name: "its_redelivery_resumes_the_same_build", claimant: "m1", want: events.Claim{Build: 1, Mine: true}},
			{name: "another_message_builds_nothing", claimant: "m2", want: events.Claim{Build: 1}},
			{name: "once_queued_the_claimant_is_done_too", claimant: "m1", mark: true, want: events.Claim{Build: 1, Queued: true}},
			{name: "a_rebuild_claims_a_new_build", claimant: "r1", rebuild: true, want: events.Claim{Build: 2, Mine: true, Fresh: true}},
			{name: "the_rebuilds_redelivery_resumes_it", claimant: "r1", rebuild: true, want: events.Claim{Build: 2, Mine: true}},
		}
		for _, s := range steps {
			if s.mark {
				if err := b.Registry().MarkQueued(ctx, repo, 9, "abc", 1); err != nil {
					t.Fatal(err)
				}
			}
			got, err := b.Registry().ClaimBuildFor(ctx, repo, 9, "abc", s.claimant, s.rebuild)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if got != s.want {
				t.Errorf("%s: got %+v, want %+v", s.name, got, s.want)
			}
		}
	})
}
