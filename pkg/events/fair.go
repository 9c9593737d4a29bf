package events

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RepoLimit is what the operator allows one repository on the whole fleet.
type RepoLimit struct {
	// MaxRunning caps the repository's tests running at once across every
	// worker (a shared database or licence server); 0 is no cap.
	MaxRunning int `json:"max_running,omitempty"`
	// Weight is the repository's share of free test slots relative to the
	// others (Zuul's relative priority): one of weight 2 is served as if
	// it ran half the tests it runs. Below 1 counts as 1.
	Weight int `json:"weight,omitempty"`
}

func (l RepoLimit) weight() int { return max(l.Weight, 1) }

// RepoLimits are the limits of every repository: Default, unless PerRepo
// names the repository. The zero value caps nothing and weighs all alike.
type RepoLimits struct {
	Default RepoLimit
	PerRepo map[Repo]RepoLimit
}

// For is the limit of r.
func (l RepoLimits) For(r Repo) RepoLimit {
	if rl, ok := l.PerRepo[r]; ok {
		return rl
	}
	return l.Default
}

// ParseRepoLimits reads the operator's per-repository limits, one
// repository a line:
//
//	# comment
//	owner/repo max_running=2 weight=3
//
// A setting left out takes its value from def; a repository named twice,
// an unknown setting or a value below its least (max_running 0, weight 1)
// is an error, and every such line is reported at once.
func ParseRepoLimits(r io.Reader, def RepoLimit) (RepoLimits, error) {
	out := RepoLimits{Default: def, PerRepo: map[Repo]RepoLimit{}}
	var errs []error
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		repo, rl, err := parseLimitLine(fields, def)
		if err == nil {
			if _, dup := out.PerRepo[repo]; dup {
				err = fmt.Errorf("%s is named twice", repo.FullName())
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", line, err))
			continue
		}
		out.PerRepo[repo] = rl
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("reading repository limits: %w", err))
	}
	return out, errors.Join(errs...)
}

func parseLimitLine(fields []string, def RepoLimit) (Repo, RepoLimit, error) {
	owner, name, ok := strings.Cut(fields[0], "/")
	repo := Repo{Owner: owner, Name: name}
	if !ok {
		return repo, def, fmt.Errorf("%q is not owner/repo", fields[0])
	}
	if err := repo.Validate(); err != nil {
		return repo, def, err
	}
	rl := def
	for _, f := range fields[1:] {
		key, val, _ := strings.Cut(f, "=")
		n, err := strconv.Atoi(val)
		switch {
		case key != "max_running" && key != "weight":
			return repo, rl, fmt.Errorf("unknown setting %q (max_running=N or weight=N)", f)
		case err != nil:
			return repo, rl, fmt.Errorf("%s: %q is not a whole number", key, val)
		case key == "max_running" && n < 0:
			return repo, rl, fmt.Errorf("max_running=%d is negative (0 is no cap)", n)
		case key == "weight" && n < 1:
			return repo, rl, fmt.Errorf("weight=%d is below 1", n)
		case key == "max_running":
			rl.MaxRunning = n
		default:
			rl.Weight = n
		}
	}
	return repo, rl, nil
}

// RepoShare is one repository's claim on test slots at one moment.
type RepoShare struct {
	Repo Repo `json:"repo"`
	// Stored counts the repository's test messages in the stream: queued,
	// running, waiting to retry or to be reported.
	Stored uint64 `json:"stored"`
	// Held counts the test slots it holds on every worker together.
	Held  int       `json:"held"`
	Limit RepoLimit `json:"limit"`
	// LastServed is when this worker last took one of its tests; zero
	// when never (Board leaves it zero).
	LastServed time.Time `json:"last_served,omitzero"`
	// Place is where a free slot looks first (1) and on, set by FairOrder
	// and Board.Shares; 0 when a slot would not look at it at all.
	Place int `json:"place,omitempty"`
}

// AtCap reports whether the repository holds as many slots as it may.
func (s RepoShare) AtCap() bool { return s.Limit.MaxRunning > 0 && s.Held >= s.Limit.MaxRunning }

// FairOrder returns the repositories a free test slot may serve, in the
// order it tries them, with Place set: least held per weight first
// (Held/Weight, so a repository's first test goes before another's
// hundredth), then the one served longest ago, then by name.
// Repositories at their cap are left out. One whose every stored job a
// slot holds stays in: a crashed worker's job comes back before its slot
// expires. shares is not changed.
func FairOrder(shares []RepoShare) []RepoShare {
	var out []RepoShare
	for _, s := range shares {
		if !s.AtCap() {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b RepoShare) int {
		return cmp.Or(
			cmp.Compare(a.Held*b.Limit.weight(), b.Held*a.Limit.weight()),
			a.LastServed.Compare(b.LastServed),
			cmp.Compare(a.Repo.Owner, b.Repo.Owner),
			cmp.Compare(a.Repo.Name, b.Repo.Name),
		)
	})
	for i := range out {
		out[i].Place = i + 1
	}
	return out
}

// LoadRepoLimits is the limits of the file at path (ParseRepoLimits), or
// only def when path is empty: every worker, and yci-queue, read the
// operator's file through it.
func LoadRepoLimits(path string, def RepoLimit) (RepoLimits, error) {
	if path == "" {
		return RepoLimits{Default: def}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return RepoLimits{}, fmt.Errorf("reading repository limits: %w", err)
	}
	defer f.Close()
	limits, err := ParseRepoLimits(f, def)
	if err != nil {
		return RepoLimits{}, fmt.Errorf("repository limits %s: %w", path, err)
	}
	return limits, nil
}
