package events

import "testing"

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                      "nats://127.0.0.1:4222",
		"nats://yourci:s3cret@nats.example:4222":     "nats://yourci:***@nats.example:4222",
		"nats://tok3n@a:4222,nats://u:p@b:4222":      "nats://***@a:4222,nats://u:***@b:4222",
		"nats://yourci:s3cret@a:4222, nats://c:4222": "nats://yourci:***@a:4222, nats://c:4222",
		"nats://u:p%zz@a:4222":                       "nats://u:***@a:4222",
		"nats://u:p@ss@a:4222":                       "nats://u:***@a:4222",
		"u:s3cret@a:4222":                            "u:***@a:4222",
		"tls://u:s3cret@a:4222/x@y":                  "tls://u:***@a:4222/x@y",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
