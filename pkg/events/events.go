// Package events defines the messages YourCI passes through NATS JetStream,
// the subjects they travel on, and the stream, consumers and key-value
// buckets that carry them. It knows nothing of GitHub, git or tests: a
// message here is plain data any box can act on.
package events

import (
	"time"
)

// Version is the schema version written into every message. A consumer that
// meets a newer version than it knows terminates the message with a reason
// rather than guessing at its meaning.
const Version = 1

// Repo names a repository on the forge as owner and name.
type Repo struct {
	Owner string `json:"owner"`
	Name  string `json:"name"`
}

// FullName is "owner/name", as GitHub spells it.
func (r Repo) FullName() string { return r.Owner + "/" + r.Name }

// PullEvent asks a worker to build one head commit of a pull request
// (handle_pull). It is deliberately slim: a webhook body may be 25 MB while
// NATS refuses messages over 1 MB, and everything else can be asked of the
// forge's API when the event is handled.
type PullEvent struct {
	Version      int    `json:"v"`
	Repo         Repo   `json:"repo"`
	Number       int    `json:"number"`
	HeadSHA      string `json:"head_sha"`
	Installation int64  `json:"installation,omitempty"`
	// Delivery identifies where the event came from: the X-GitHub-Delivery
	// id of a webhook, or a reconcile sweep's own id.
	Delivery string `json:"delivery,omitempty"`
	// Rebuild asks for a new build even when this head commit has one.
	Rebuild bool `json:"rebuild,omitempty"`
}

// TestSpec is one configuration of a build's test matrix, as the
// repository's .yci.py yielded it.
type TestSpec struct {
	Name           string            `json:"name"`
	Command        string            `json:"command"`
	Env            map[string]string `json:"env,omitempty"`
	Timeout        time.Duration     `json:"timeout,omitempty"`
	Retries        int               `json:"retries,omitempty"`
	RetryIncrement time.Duration     `json:"retry_increment,omitempty"`
}

// TestJob asks a worker to run one attempt of one test of a build
// (handle_test). A retry is a new TestJob with Attempt+1 and NotBefore set,
// so the wait travels through the queue and the retry may run on any box.
type TestJob struct {
	Version      int      `json:"v"`
	Repo         Repo     `json:"repo"`
	Number       int      `json:"number"`
	HeadSHA      string   `json:"head_sha"`
	Installation int64    `json:"installation,omitempty"`
	Build        int      `json:"build"`
	Test         TestSpec `json:"test"`
	// Attempt counts from 1.
	Attempt int `json:"attempt"`
	// NotBefore is when the attempt may start; zero means now.
	NotBefore time.Time `json:"not_before,omitzero"`
}
