package webhook

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeSeeds are bodies that attack decodeObject where it could part from
// encoding/json: repeated, differently cased and escaped names, nulls and
// values of the wrong kind.
var decodeSeeds = []string{
	`{"action":"opened","number":1,"pull_request":{"number":1,"head":{"sha":"a"},"head":{"ref":"x"}},"Pull_Request":{"draft":true}}`,
	`{"act\u0069on":"x","NUMBER":2,"pull_request":null,"repository":{"owner":null,"name":"n"}}`,
	`{"pull_request":{"updated_at":"2026-12-06T10:00:00Z"},"pull_request":"no"}`,
	`{"pull_request":{"head":[]}}`,
	`{"number":"1"}`,
	`{"number":1.5}`,
	`{"changes":{"base":{"ref":{"from":"main"}}},"changes":{"base":null}}`,
	`{"installation":{"id":-3},"label":{"name":"ok-to-test"},"sender":{"login":"jane"}}`,
	`[{"action":"opened"}]`,
	`null`,
	` {"repository" : {"full_name":"a/b"} } `,
}

// FuzzDecodePull holds decodePull to what json.Unmarshal into the same
// struct gives, for every body: the same fields, the same pull request
// object as sent, and an error exactly when json.Unmarshal has one.
func FuzzDecodePull(f *testing.F) {
	addTestdata(f)
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want pullDelivery
		werr := json.Unmarshal(body, &want)
		got, err := decodePull(body)
		if (err != nil) != (werr != nil) {
			t.Fatalf("decodePull error %v, json.Unmarshal error %v", err, werr)
		}
		if err != nil {
			return
		}
		raw := got.PullRequest.raw
		got.PullRequest.raw = nil
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(pullPart{})); diff != "" {
			t.Fatalf("decodePull differs from json.Unmarshal (-want +got):\n%s", diff)
		}
		var last rawPull
		if json.Unmarshal(body, &last) == nil && len(last.PullRequest) > 0 && last.PullRequest[0] == '{' &&
			len(last.PullRequest) <= 256<<10 && !bytes.Equal(raw, last.PullRequest) {
			t.Fatalf("carried pull request %.80q, want %.80q", raw, last.PullRequest)
		}
	})
}
