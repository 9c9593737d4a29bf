package artifacts

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// commitInfo is what readCommits learns of one commit: its id and its
// committer date (seconds since the epoch), or that the mirror lacks it.
type commitInfo struct {
	id    string
	time  int64
	found bool
}

// readCommits resolves each of names (revisions such as
// "refs/heads/main^{commit}" or "<id>^{commit}", with no space or line
// break) in mirror and reads the commits, all with one git process: a
// merge needs its base's tip, to know both commits are there, and their
// dates, and each git process costs milliseconds on the path to a test's
// start. A name that does not resolve to a commit is not found; only git
// failing is an error. Only call it holding the mirror's lock.
func (mg Merges) readCommits(ctx context.Context, mirror string, names ...string) ([]commitInfo, error) {
	var in strings.Builder
	for _, n := range names {
		if strings.ContainsAny(n, " \t\r\n\x00") {
			return nil, fmt.Errorf("%w: revision %q", ErrInvalid, n)
		}
		in.WriteString(n + "\n")
	}
	out, err := mg.mirrors.gitWith(ctx, nil, strings.NewReader(in.String()), "--git-dir="+mirror, "cat-file", "--batch")
	if err != nil {
		return nil, fmt.Errorf("reading commits %q: %w", names, err)
	}
	commits, err := parseBatch(out, len(names))
	if err != nil {
		return nil, fmt.Errorf("reading commits %q: %w", names, err)
	}
	return commits, nil
}

// parseBatch reads n answers of "git cat-file --batch": "<id> commit
// <size>\n<object>\n" for a commit, "<name> missing\n" (or ambiguous)
// for a name that resolves to none.
func parseBatch(out []byte, n int) ([]commitInfo, error) {
	r := bufio.NewReader(bytes.NewReader(out))
	commits := make([]commitInfo, n)
	for i := range commits {
		header, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("git answered %d of %d names", i, n)
		}
		fields := strings.Fields(header)
		if len(fields) != 3 {
			continue // "<name> missing" or "<name> ambiguous"
		}
		size, err := strconv.Atoi(fields[2])
		if err != nil || size < 0 {
			return nil, fmt.Errorf("git's answer %q has no size", header)
		}
		body := make([]byte, size+1) // the object and its line break
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("git's object %s is cut short", fields[0])
		}
		if fields[1] != "commit" {
			continue
		}
		if err := validateSHA(fields[0]); err != nil {
			return nil, err
		}
		commits[i] = commitInfo{id: fields[0], time: committerTime(body[:size]), found: true}
	}
	return commits, nil
}

// committerTime is the date of a commit object's committer line
// ("committer Name <email> 1700000000 +0100"), in seconds since the
// epoch; 0 when the header has none, as "git log --format=%ct" prints.
func committerTime(commit []byte) int64 {
	headers, _, _ := bytes.Cut(commit, []byte("\n\n"))
	for line := range strings.Lines(string(headers)) {
		rest, ok := strings.CutPrefix(line, "committer ")
		if !ok {
			continue
		}
		// The date follows the identity's last '>'.
		end := strings.LastIndexByte(rest, '>')
		if end < 0 {
			return 0
		}
		fields := strings.Fields(rest[end+1:])
		if len(fields) == 0 {
			return 0
		}
		t, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0
		}
		return t
	}
	return 0
}
