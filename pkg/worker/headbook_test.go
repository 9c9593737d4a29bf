package worker

import (
	"context"
	"sync"

	"github.com/yourci/yourci/pkg/events"
)

// fakeHeads is HeadBook in memory, keeping state as events.Heads does:
// every report is merged by events.HeadRecord.Merge.
type fakeHeads struct {
	headsMu sync.Mutex
	heads   map[pullKey]events.HeadRecord
}

func (f *fakeHeads) HeadOf(_ context.Context, repo events.Repo, pull int) (events.HeadRecord, bool, error) {
	f.headsMu.Lock()
	defer f.headsMu.Unlock()
	rec, ok := f.heads[pullKey{repo, pull}]
	return rec, ok, nil
}

func (f *fakeHeads) RecordHead(_ context.Context, repo events.Repo, pull int, r events.HeadRecord) (events.HeadRecord, error) {
	f.headsMu.Lock()
	defer f.headsMu.Unlock()
	if f.heads == nil {
		f.heads = map[pullKey]events.HeadRecord{}
	}
	cur, ok := f.heads[pullKey{repo, pull}]
	next, _ := cur.Merge(ok, r)
	f.heads[pullKey{repo, pull}] = next
	return next, nil
}
