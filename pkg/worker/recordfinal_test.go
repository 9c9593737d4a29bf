package worker

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/events/memrecords"
	"github.com/yourci/yourci/pkg/status"
)

// owedQueue keeps the test jobs published to it and fails them with err.
type owedQueue struct {
	err       error
	published []events.TestJob
}

func (q *owedQueue) PublishTest(_ context.Context, job events.TestJob) error {
	q.published = append(q.published, job)
	return q.err
}

// TestFinalStateIsNeverLostToAFailedRecordWrite: a final state whose
// record write fails is queued to be recorded later, without running the
// test again, and when it is handled it lands in the record; only when the
// queue fails too does the attempt go back.
func TestFinalStateIsNeverLostToAFailedRecordWrite(t *testing.T) {
	t.Parallel()
	storeDown := errors.New("record store down")
	tests := []struct {
		name              string
		recordErr, pubErr error
		wantErr, wantOwed bool
		wantState         events.TestState
	}{
		{"recorded_at_once", nil, nil, false, false, events.TestFailed},
		{"record_down_queues_the_state", storeDown, nil, false, true, ""},
		{"record_and_queue_down_hands_the_attempt_back", storeDown, errors.New("queue down"), true, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := memrecords.New()
			store.FailUpdates(tc.recordErr)
			q := &owedQueue{err: tc.pubErr}
			rec := &testRecorder{records: store, publish: q, log: slog.New(slog.DiscardHandler)}
			job := events.TestJob{Repo: events.Repo{Owner: owner, Name: repoName}, Number: 3, HeadSHA: decideSHA,
				Build: 1, Attempt: 2, Test: events.TestSpec{Name: "unit", Retries: 1}}
			st := status.Status{State: status.Failure, Description: "failed (exit 1) on attempt 2 of 2"}
			err := rec.recordFinal(t.Context(), job, st, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("recordFinal: %v, want an error: %v", err, tc.wantErr)
			}
			if got := len(q.published) == 1; got != tc.wantOwed {
				t.Fatalf("queued %d jobs, want the owed state queued: %v", len(q.published), tc.wantOwed)
			}
			if !tc.wantOwed {
				if got := testRecord(t, store, job); got.State != tc.wantState || got.Description != st.Description {
					t.Errorf("record %s %q, want %s %q", got.State, got.Description, tc.wantState, st.Description)
				}
				return
			}
			owed := q.published[0]
			if owed.Outcome == nil || owed.Outcome.State != string(status.Failure) || owed.Outcome.Description != st.Description {
				t.Fatalf("owed job carries %+v, want the final state", owed.Outcome)
			}
			// The store is back: handling the owed job records the state.
			store.FailUpdates(nil)
			if err := rec.changeTest(t.Context(), owed, finalState(status.State(owed.Outcome.State)), st, nil); err != nil {
				t.Fatal(err)
			}
			if got := testRecord(t, store, job); got.State != events.TestFailed {
				t.Errorf("after the owed job the record says %s, want failed", got.State)
			}
		})
	}
}
