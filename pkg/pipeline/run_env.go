package pipeline

import (
	"maps"
	"slices"
	"strings"
)

// withheldPrefixes name the worker's variables a test never sees: the
// worker's GitHub and NATS settings (tokens, passwords, key files, webhook
// secret, NATS URLs that may embed credentials), the worker's own YCI_*
// settings (a test gets YCI_* facts instead), gh's tokens, and git
// configuration passed through the environment (it may carry an
// Authorization header).
var withheldPrefixes = []string{"GITHUB_", "NATS_", "YCI_", "GH_", "GIT_CONFIG_"}

// withheldNames are single variables that hand out a credential.
var withheldNames = []string{"GIT_ASKPASS", "SSH_ASKPASS", "SSH_AUTH_SOCK", "GIT_CONFIG_PARAMETERS"}

// withheldWords catch credentials an operator left in the worker's
// environment for something else (cloud keys, registry passwords).
var withheldWords = []string{"TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDS", "PRIVATE_KEY", "API_KEY", "ACCESS_KEY"}

// TestEnv returns the environment of a test attempt: base without every
// variable that may carry the worker's credentials (see withheldPrefixes,
// withheldNames and withheldWords; matched without regard to case), then
// facts, then the test's env, in that order of precedence: a later value for
// a name replaces an earlier one in place, so each name appears once. Facts
// and env are added in name order; entries without a usable name are
// dropped. Facts and env are trusted as given: a .yci.py may set any name.
func TestEnv(base []string, facts, env map[string]string) []string {
	out := make([]string, 0, len(base)+len(facts)+len(env))
	index := make(map[string]int, cap(out))
	set := func(name, value string) {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return
		}
		kv := name + "=" + value
		if i, ok := index[name]; ok {
			out[i] = kv
			return
		}
		index[name] = len(out)
		out = append(out, kv)
	}
	for _, kv := range base {
		name, value, ok := strings.Cut(kv, "=")
		if ok && !isCredential(name) {
			set(name, value)
		}
	}
	for _, m := range []map[string]string{facts, env} {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			set(name, m[name])
		}
	}
	return out
}

// isCredential reports whether the worker's variable name is withheld from
// tests.
func isCredential(name string) bool {
	upper := strings.ToUpper(name)
	if slices.Contains(withheldNames, upper) {
		return true
	}
	for _, p := range withheldPrefixes {
		if strings.HasPrefix(upper, p) {
			return true
		}
	}
	return namesSecret(upper)
}

// namesSecret reports whether an upper-case variable name reads like a
// credential's: it contains one of withheldWords, or KEY as a word of its
// own (DEPLOY_KEY, KEY_FILE; not KEYBOARD or MONKEY).
func namesSecret(upper string) bool {
	for _, w := range withheldWords {
		if strings.Contains(upper, w) {
			return true
		}
	}
	return slices.Contains(strings.Split(upper, "_"), "KEY")
}

// credentialValues returns the values of base's variables whose names read
// like a credential's (namesSecret): the runner masks them in logs too.
func credentialValues(base []string) []string {
	var values []string
	for _, kv := range base {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if namesSecret(strings.ToUpper(name)) {
			values = append(values, value)
		}
	}
	return values
}
