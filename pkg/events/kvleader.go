package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A replicated bucket answers the client library's reads ("direct gets")
// from any of its replicas, and a replica that lags behind (one just back
// after an election, say) answers with an older revision or with none: a
// worker that had just claimed build 2 of a pull was told the pull had no
// build. The stream's own message API is answered by its leader alone,
// which has every write it acknowledged, so the reads of a replicated
// bucket go there (latest), as do Update's read-backs. A single server
// has nothing to lag behind and keeps the direct read.

// msgGetRequest asks a stream for one message, by sequence or as the
// last of a subject.
type msgGetRequest struct {
	Seq           uint64 `json:"seq,omitempty"`
	LastBySubject string `json:"last_by_subj,omitempty"`
}

// storedMsg is one message of a bucket's stream as its leader has it.
type storedMsg struct {
	Subject  string    `json:"subject"`
	Sequence uint64    `json:"seq"`
	Header   []byte    `json:"hdrs"`
	Data     []byte    `json:"data"`
	Time     time.Time `json:"time"`
}

// leaderGet reads one message of the bucket's stream through the stream's
// leader; it is nil when there is none.
func (kv electionProofKV) leaderGet(ctx context.Context, r msgGetRequest) (*storedMsg, error) {
	req, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	reply, err := kv.s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+kv.Bucket(), req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Message *storedMsg          `json:"message"`
		Error   *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("decoding a message of %s: %w", kv.Bucket(), err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, nil
	case resp.Error != nil:
		return nil, resp.Error
	case resp.Message == nil:
		return nil, fmt.Errorf("reading a message of %s: empty answer", kv.Bucket())
	}
	return resp.Message, nil
}

// latest is Get answered by the stream's leader: key's latest value, or
// jetstream.ErrKeyNotFound for a key never written, deleted or purged.
func (kv electionProofKV) latest(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	prefix := "$KV." + kv.Bucket() + "."
	msg, err := kv.leaderGet(ctx, msgGetRequest{LastBySubject: prefix + key})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	if msg == nil {
		return nil, jetstream.ErrKeyNotFound
	}
	if len(msg.Header) > 0 {
		hdr, err := nats.DecodeHeadersMsg(msg.Header)
		if err != nil {
			return nil, fmt.Errorf("decoding the headers of %s: %w", key, err)
		}
		if op := hdr.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
			return nil, jetstream.ErrKeyNotFound
		}
	}
	return leaderEntry{bucket: kv.Bucket(), key: strings.TrimPrefix(msg.Subject, prefix), msg: msg}, nil
}

// leaderEntry is a bucket entry as the stream's leader had it.
type leaderEntry struct {
	bucket, key string
	msg         *storedMsg
}

func (e leaderEntry) Bucket() string                  { return e.bucket }
func (e leaderEntry) Key() string                     { return e.key }
func (e leaderEntry) Value() []byte                   { return e.msg.Data }
func (e leaderEntry) Revision() uint64                { return e.msg.Sequence }
func (e leaderEntry) Created() time.Time              { return e.msg.Time }
func (e leaderEntry) Delta() uint64                   { return 0 }
func (e leaderEntry) Operation() jetstream.KeyValueOp { return jetstream.KeyValuePut }
