package events

import (
	"net/url"
	"strings"
)

// Redact returns a NATS URL, or a comma-separated list of them, fit for a
// log or an error: any password in it is replaced by "xxxxx".
func Redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx") // a bare token
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
