package events

import (
	"strings"
)

// Redact returns a NATS URL, or a comma-separated list of them, fit for a
// log or an error: the password of user:password@ becomes ***, and so does
// a bare token (token@). It works on the text, not a parsed URL, so that a
// URL too malformed to parse is masked all the same.
func Redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		rest := p
		prefix := ""
		if j := strings.Index(p, "://"); j >= 0 {
			prefix, rest = p[:j+3], p[j+3:]
		}
		// The userinfo ends at the last @ before the path.
		hostEnd := strings.IndexAny(rest, "/?#")
		if hostEnd < 0 {
			hostEnd = len(rest)
		}
		at := strings.LastIndex(rest[:hostEnd], "@")
		if at < 0 {
			continue
		}
		user, _, hasPassword := strings.Cut(rest[:at], ":")
		masked := "***"
		if hasPassword {
			masked = user + ":***"
		}
		parts[i] = prefix + masked + rest[at:]
	}
	return strings.Join(parts, ",")
}
