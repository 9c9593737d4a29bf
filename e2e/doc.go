// Package e2e holds YourCI's end-to-end and fault tests. They build the
// real receiver and worker commands once, start them as processes wired to
// a real JetStream (in-process nats-server with file storage, the
// receiver's embedded default, or Debian's nats-server binary) and to the
// GitHub stand-in, and assert the end state GitHub shows: every status
// final, pointing at a log that exists, and nothing built twice.
//
// The package has no API; `go test ./e2e` runs it, and
// `go test -run '^$' -bench WebhookToTestStart ./e2e` measures the delay
// from a webhook to the start of its test process.
package e2e
