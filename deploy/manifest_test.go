package deploy

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

// appManifest is the part of GitHub's App manifest format the file uses;
// decoding refuses any other key, so a misspelt one (which GitHub would
// ignore) fails here.
type appManifest struct {
	Name           string `json:"name"`
	Description    string `json:"description"`
	URL            string `json:"url"`
	HookAttributes struct {
		URL    string `json:"url"`
		Active bool   `json:"active"`
	} `json:"hook_attributes"`
	RedirectURL        string            `json:"redirect_url"`
	Public             bool              `json:"public"`
	DefaultPermissions map[string]string `json:"default_permissions"`
	DefaultEvents      []string          `json:"default_events"`
}

// TestGitHubAppManifestAsksForTheLeastAccess pins the permissions: widening
// them is a decision for deploy/README.md, not an accident.
func TestGitHubAppManifestAsksForTheLeastAccess(t *testing.T) {
	t.Parallel()
	const name = "github-app-manifest.json"
	dec := json.NewDecoder(bytes.NewReader([]byte(readDeployFile(t, name))))
	dec.DisallowUnknownFields()
	var m appManifest
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
	want := map[string]string{
		"checks":        "write", // one check run per test: queued, in_progress, completed
		"contents":      "read",  // clone the base repository and fetch refs/pull/N/head
		"issues":        "read",  // issue_comment (comment commands); who added the approval label, when its webhook was missed
		"merge_queues":  "read",  // merge_group: GitHub sends it only to Apps that may read merge queues
		"metadata":      "read",  // mandatory; also the author's permission on the repository
		"pull_requests": "write", // read pulls and labels; reply to and react on comment commands
		"statuses":      "write", // commit statuses: pending, success, failure, error
	}
	if !maps.Equal(m.DefaultPermissions, want) {
		t.Errorf("default_permissions = %v, want %v", m.DefaultPermissions, want)
	}
	// pull_request covers opened, synchronize, reopened, closed, labeled;
	// issue_comment carries /retest and /ok-to-test; check_run and
	// check_suite carry the re-run buttons (rerequested), which GitHub
	// sends only to the App that wrote the check run and only when it
	// subscribes to them; merge_group asks for checks on a merge queue's
	// group (checks_requested) and gives one up (destroyed).
	if want := []string{"check_run", "check_suite", "issue_comment", "merge_group", "pull_request"}; !slices.Equal(m.DefaultEvents, want) {
		t.Errorf("default_events = %v, want %v", m.DefaultEvents, want)
	}
	if m.Public {
		t.Error("the App is public: anyone could install it and send it webhooks")
	}
	if !m.HookAttributes.Active || !strings.HasSuffix(m.HookAttributes.URL, "/webhook") {
		t.Errorf("hook_attributes = %+v, want an active hook on the receiver's /webhook", m.HookAttributes)
	}
}
