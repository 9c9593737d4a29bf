package fakegithub_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

// A repository with an open pull request, read back with go-github and
// given a commit status, as YourCI's tests set it up.
func Example() {
	dir, err := os.MkdirTemp("", "fakegithub-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := fakegithub.New(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	if _, err := s.CreateRepo("acme", "widgets"); err != nil {
		log.Fatal(err)
	}
	if _, err := s.Commit("acme", "widgets", "main", map[string]string{"test.sh": "#!/bin/bash\ntrue\n"}, "Initial"); err != nil {
		log.Fatal(err)
	}
	if _, err := s.Commit("acme", "widgets", "feature", map[string]string{"new.txt": "new\n"}, "Feature"); err != nil {
		log.Fatal(err)
	}
	pr, err := s.OpenPull("acme", "widgets", fakegithub.PullSpec{Head: "feature", Author: "alice"})
	if err != nil {
		log.Fatal(err)
	}

	base := s.URL() + "/"
	client, err := github.NewClient(github.WithURLs(&base, &base), github.WithAuthToken(s.Token()))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	pulls, _, err := client.PullRequests.List(ctx, "acme", "widgets", nil)
	if err != nil {
		log.Fatal(err)
	}
	status := github.RepoStatus{State: github.Ptr("success"), Context: github.Ptr("yci/foo-x")}
	if _, _, err := client.Repositories.CreateStatus(ctx, "acme", "widgets", pr.GetHead().GetSHA(), status); err != nil {
		log.Fatal(err)
	}
	latest := s.LatestStatuses("acme", "widgets", pr.GetHead().GetSHA())["yci/foo-x"]
	fmt.Println(len(pulls), pulls[0].GetUser().GetLogin(), pulls[0].GetHead().GetRef(), latest.GetState())
	// Output: 1 alice feature success
}
