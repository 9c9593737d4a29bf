package worker

import (
	"context"
	"log/slog"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pages"
)

// A superseded build's page links to the build that replaced it (issue
// 15). The two records arrive in either order: a test dropped before it
// ran may be marked superseded before the new head's build is recorded,
// or after. So the page looks for its successor when it is written, and
// is written again when the successor arrives later.

// successorCandidates are the records rec's page may find its successor
// among: the keeper's own records of the pull and, when rec was superseded
// and none of those replaced it, the repository's recent records.
func (k *PageKeeper) successorCandidates(ctx context.Context, log *slog.Logger, rec events.BuildRecord) []events.BuildRecord {
	if pages.Summarize(rec).SupersededBy == "" {
		return nil
	}
	k.mu.Lock()
	var kept []events.BuildRecord
	for key, b := range k.builds {
		if key.Repo == rec.Key.Repo && key.Pull == rec.Key.Pull && key.Build > rec.Key.Build {
			kept = append(kept, b.rec)
		}
	}
	k.mu.Unlock()
	if _, ok := pages.Successor(rec, kept); ok {
		return kept
	}
	recent, err := k.opts.Records.RecentBuilds(ctx, rec.Key.Repo, recentBuilds)
	if err != nil {
		// The page goes without the link until the successor arrives.
		log.Warn("reading recent builds for a superseded build's successor", "err", err)
		return kept
	}
	return recent
}

// successorArrived marks for writing the pages of the builds rec, a build
// new to the keeper, replaced: earlier builds of its pull whose tests its
// commit superseded, and which may have been written before rec existed.
// k.mu is held.
func (k *PageKeeper) successorArrived(rec events.BuildRecord) {
	for key, b := range k.builds {
		if key.Repo != rec.Key.Repo || key.Pull != rec.Key.Pull || key.Build >= rec.Key.Build || b.page.dirty {
			continue
		}
		if pages.Summarize(b.rec).SupersededBy == rec.SHA && rec.SHA != "" {
			b.page.dirty = true
		}
	}
}
