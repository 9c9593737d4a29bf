package events

import (
	"net/url"
	"strconv"
	"strings"
)

// PullLink is the record's PullURL when it may be linked from a page: an
// absolute http or https URL with a host. Anything else (another scheme,
// a relative path, text that does not parse) is "", so a page shows no
// link rather than one a GitHub server, or whoever forged its answer,
// chose the meaning of. The result still needs escaping where it is
// written; html/template does that.
func (r *BuildRecord) PullLink() string {
	u, ok := httpURL(r.PullURL)
	if !ok {
		return ""
	}
	return u.String()
}

// CommitLink is the page of the record's head commit on GitHub,
// <repository>/commit/<sha>, made from PullLink when that ends in
// /pull/<the record's pull number>, as GitHub's and GitHub Enterprise's
// pull request pages do; "" when it does not, or when SHA is not a full
// commit id. A fork's commit is shown there too: GitHub serves every
// commit of a pull request under its base repository.
func (r *BuildRecord) CommitLink() string {
	u, ok := httpURL(r.PullURL)
	if !ok || ValidateSHA(r.SHA) != nil {
		return ""
	}
	repo, found := strings.CutSuffix(u.Path, "/pull/"+strconv.Itoa(r.Key.Pull))
	if !found || repo == "" {
		return ""
	}
	u.Path, u.RawPath, u.RawQuery, u.Fragment = repo+"/commit/"+r.SHA, "", "", ""
	return u.String()
}

// httpURL parses s as an absolute http or https URL with a host and no
// user information.
func httpURL(s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil, false
	}
	return u, true
}
