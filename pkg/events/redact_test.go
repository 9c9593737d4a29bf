package events

import "testing"

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                      "nats://127.0.0.1:4222",
		"nats://yourci:s3cret@nats.example:4222":     "nats://yourci:xxxxx@nats.example:4222",
		"nats://tok3n@a:4222,nats://u:p@b:4222":      "nats://xxxxx@a:4222,nats://u:xxxxx@b:4222",
		"nats://yourci:s3cret@a:4222, nats://c:4222": "nats://yourci:xxxxx@a:4222, nats://c:4222",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
