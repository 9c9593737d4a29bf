// Package webhook turns GitHub webhook deliveries into YourCI pull events.
//
// The handler verifies a delivery's X-Hub-Signature-256 (one HMAC-SHA256,
// computed as the body arrives and compared in constant time), decodes the
// body once into a slim events.PullEvent, publishes it and waits for
// JetStream's acknowledgement before answering GitHub: an answer of 202
// means the event is stored, never merely that it was seen.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/yourci/yourci/pkg/events"
)

// retryAfterBusy is the Retry-After, in seconds, of a delivery refused
// because too many bodies are in flight.
const retryAfterBusy = "2"

// MaxBodyBytes bounds a delivery's body. GitHub caps payloads at 25 MB; a
// larger body is not from GitHub and is refused with 413 before the rest of
// it is read.
const MaxBodyBytes = 25 << 20

// DefaultPublishTimeout bounds the wait for JetStream's acknowledgement,
// the publisher's retries included: on a NATS cluster electing a new
// leader for the stream (seconds after a node dies) the publish is tried
// again until then, so a node failure costs GitHub a slow answer, not a
// refused delivery it never sends again. It stays under the 10 s GitHub
// waits for an answer, so a stalled queue gives GitHub a 503 (a failed
// delivery it records) rather than a timeout.
const DefaultPublishTimeout = 8 * time.Second

// Publisher stores a pull event durably. PublishPull returns nil only once
// the event is acknowledged by the queue; it must use ev.Delivery as the
// de-duplication id, so a redelivered webhook is stored once. It is called
// from many goroutines at once. pkg/events' Bus satisfies it.
type Publisher interface {
	PublishPull(ctx context.Context, ev events.PullEvent) error
}

// Option configures NewHandler.
type Option func(*handler)

// WithLogger sets the logger that receives one line per delivery. The
// default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(h *handler) { h.log = l } }

// WithMetrics counts deliveries on m. The default counts nothing.
func WithMetrics(m *Metrics) Option { return func(h *handler) { h.metrics = m } }

// WithApprovalLabel sets the label whose addition triggers a build
// (DefaultApprovalLabel unless set). An empty label disables the trigger.
func WithApprovalLabel(label string) Option {
	return func(h *handler) { h.approvalLabel = label }
}

// WithPublishTimeout bounds the wait for the queue's acknowledgement
// (DefaultPublishTimeout unless set).
func WithPublishTimeout(d time.Duration) Option {
	return func(h *handler) { h.publishTimeout = d }
}

type handler struct {
	secret         []byte
	budget         *Budget
	pub            Publisher
	log            *slog.Logger
	metrics        *Metrics
	approvalLabel  string
	publishTimeout time.Duration
	heads          HeadAnnouncer
	recorder       HeadRecorder
	commands       CommandPublisher
}

// WithBudget shares b, the cap on body bytes held at once, with the
// handler; the default is a budget of DefaultMaxInflightBytes of its own.
func WithBudget(b *Budget) Option { return func(h *handler) { h.budget = b } }

// HeadAnnouncer tells workers that a pull request closed, so that they stop
// its running tests; events.Heads has it.
type HeadAnnouncer interface {
	AnnounceHead(a events.HeadAnnouncement) error
}

// WithHeadAnnouncer makes the handler announce closed pull requests. The
// announcement only saves time: a worker checks a pull is open before each
// test anyway, so a lost one loses nothing.
func WithHeadAnnouncer(a HeadAnnouncer) Option { return func(h *handler) { h.heads = a } }

// NewHandler returns the POST /webhook handler. It refuses an empty secret:
// YourCI never accepts unsigned deliveries. The handler is safe for
// concurrent use; it holds no work after answering.
//
// Answers: ping 200; a pull_request or a merge_group checks_requested
// that builds 202 once published (see GroupEventFrom; a destroyed group
// is answered 202 "ignored" once its tests were told to stop); an
// authentic delivery of another action or event 202 "ignored: <reason>"
// (GitHub sends whatever the hook subscribes to and a 4xx would mark those
// deliveries failed); a missing or wrong signature 401; a body over
// MaxBodyBytes 413; a missing X-GitHub-Event header, an empty or malformed
// body, or a payload no GitHub delivery could hold 400; a method other than
// POST 405; a body not received within the server's read deadline 408; a
// queue that does not acknowledge in time 503; a body that would take the
// handler past its Budget 503 with Retry-After. Nothing is published on
// any answer but the pull_request and merge_group 202 and, with
// WithCommands, the 202 of an issue_comment holding commands (see
// CommandEventFrom) or of a re-run button's check_run or check_suite (see
// CheckRunEventFrom and CheckSuiteEventFrom).
func NewHandler(secret string, pub Publisher, opts ...Option) (http.Handler, error) {
	if secret == "" {
		return nil, errors.New("creating webhook handler: the webhook secret is empty; refusing to accept unsigned deliveries")
	}
	if pub == nil {
		return nil, errors.New("creating webhook handler: no publisher")
	}
	h := &handler{
		secret:         []byte(secret),
		pub:            pub,
		log:            slog.Default(),
		approvalLabel:  DefaultApprovalLabel,
		publishTimeout: DefaultPublishTimeout,
	}
	for _, o := range opts {
		o(h)
	}
	if h.log == nil {
		return nil, errors.New("creating webhook handler: nil logger")
	}
	if h.budget == nil {
		var err error
		if h.budget, err = NewBudget(DefaultMaxInflightBytes); err != nil {
			return nil, err
		}
	}
	if h.publishTimeout <= 0 {
		return nil, fmt.Errorf("creating webhook handler: publish timeout %v is not positive", h.publishTimeout)
	}
	return h, nil
}

// delivery is what is known about one request, for its answer and its log
// line. Strings from the request are kept as sent and bounded when written.
type delivery struct {
	id, event, action string
	repo              string
	pull              int
	sha               string
	// group names a merge group's build ("merge group 1a2b3c4d5"); empty
	// for a pull request.
	group           string
	pong, published bool
}

// Outcomes of a delivery, as logged.
const (
	outcomePublished = "published"
	outcomeIgnored   = "ignored"
	outcomePong      = "pong"
	outcomeRefused   = "refused"
)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h.metrics.receive()
	d := delivery{id: r.Header.Get("X-GitHub-Delivery"), event: r.Header.Get("X-GitHub-Event")}
	err := h.handle(r, w, &d)
	code, reason, text := statusFor(err)
	if err == nil && d.pong {
		code, text = http.StatusOK, "pong"
	}
	if errors.Is(err, errBusy) {
		w.Header().Set("Retry-After", retryAfterBusy)
	}
	werr := writeAnswer(w, code, d.id, text, reason != "")
	outcome := outcomeOf(d, err)
	h.metrics.observe(outcome, reason, code, time.Since(start))
	h.logDelivery(r.Context(), d, outcome, code, err, werr, time.Since(start))
}

// outcomeOf names what became of a delivery, for logs and metrics.
func outcomeOf(d delivery, err error) string {
	switch {
	case d.pong:
		return outcomePong
	case d.published:
		return outcomePublished
	case errors.Is(err, ErrIgnored):
		return outcomeIgnored
	default:
		return outcomeRefused
	}
}

// handle verifies, decodes and publishes one delivery. A nil error means
// the delivery was a ping or its event is published.
//
// The body is hashed with the secret as it arrives and held in chunks
// counted against the handler's Budget. Only the bodies of the events
// reads names are kept; any other event is hashed and dropped as it
// streams in. Only once the signature matches is the body decoded, once,
// by the event's own code (see dispatch).
func (h *handler) handle(r *http.Request, w http.ResponseWriter, d *delivery) error {
	if r.Method != http.MethodPost {
		return fmt.Errorf("%w: %s", errMethod, r.Method)
	}
	if d.event == "" {
		return &BadRequestError{Field: "X-GitHub-Event", Problem: "is missing"}
	}
	sig, err := signatureOf(r)
	if err != nil {
		return err
	}
	if r.ContentLength > MaxBodyBytes {
		return fmt.Errorf("%w: Content-Length %d is over %d bytes", errTooLarge, r.ContentLength, MaxBodyBytes)
	}
	keep := h.reads(d.event)
	g := h.budget.open(r.ContentLength >= 0 && r.ContentLength <= SmallBodyBytes)
	defer g.release()
	body := newBodyReader(h.secret, g, keep)
	if err := body.readFrom(w, r.Body); err != nil {
		return err
	}
	if body.n == 0 {
		return &BadRequestError{Field: "body", Problem: "is empty"}
	}
	if err := body.verify(sig); err != nil {
		return err
	}
	if !keep {
		return ignored(fmt.Sprintf("event %q", truncate(d.event)))
	}
	raw, err := body.bytes()
	if err != nil {
		return err
	}
	return h.dispatch(r.Context(), raw, d)
}

// Events the handler acts on, as named by X-GitHub-Event.
const (
	eventPing       = "ping"
	eventPull       = "pull_request"
	eventComment    = "issue_comment"
	eventCheckRun   = "check_run"
	eventCheckSuite = "check_suite"
)

// dispatch decodes the verified body of an event the handler reads, once,
// into what that event needs, and publishes what it asks for.
func (h *handler) dispatch(ctx context.Context, raw []byte, d *delivery) error {
	switch d.event {
	case eventPing:
		if !validJSON(raw) {
			return &BadRequestError{Field: "body", Problem: "malformed ping payload"}
		}
		d.pong = true
		return nil
	case eventPull:
		return h.publish(ctx, raw, d)
	}
	if !validJSON(raw) {
		// An authentic body of an event that only carries commands, which
		// is no JSON, is ignored like any event YourCI does not act on, as
		// it was when a library decoded it first.
		return ignored(fmt.Sprintf("event %q", truncate(d.event)))
	}
	switch d.event {
	case eventComment:
		return h.publishCommand(ctx, raw, d)
	case eventCheckRun:
		return h.publishCheck(ctx, raw, d, false)
	case eventCheckSuite:
		return h.publishCheck(ctx, raw, d, true)
	case eventMergeGroup:
		return h.publishGroup(ctx, raw, d)
	default:
		return ignored(fmt.Sprintf("event %q", truncate(d.event)))
	}
}

// publish builds the pull event from the verified body and publishes it,
// waiting for the acknowledgement. The wait is detached from the client's
// connection so a publish already sent is not abandoned halfway when GitHub
// hangs up; the timeout still bounds it.
func (h *handler) publish(ctx context.Context, body []byte, d *delivery) error {
	pd, err := decodePull(body)
	if err != nil {
		return err
	}
	d.action, d.pull, d.sha = pd.Action, pd.Number, pd.PullRequest.Head.SHA
	if pd.Repository.Owner.Login != "" || pd.Repository.Name != "" {
		d.repo = pd.Repository.Owner.Login + "/" + pd.Repository.Name
	}
	ev, err := pd.event(d.id, h.approvalLabel)
	if errors.Is(err, ErrIgnored) && pd.Action == "closed" {
		h.announceClosed(ctx, pd)
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.publishTimeout)
	defer cancel()
	return h.publishEvent(ctx, ev, d)
}

// publishEvent records ev's head and publishes ev, within ctx's deadline.
func (h *handler) publishEvent(ctx context.Context, ev events.PullEvent, d *delivery) error {
	// Recorded first, so that the worker handling the event finds its
	// head (or a newer one) in the record.
	h.recordHead(ctx, ev, false)
	err := h.pub.PublishPull(ctx, ev)
	switch {
	case errors.Is(err, events.ErrInvalidEvent):
		// The queue refuses this event whatever happens: retrying cannot
		// help, so it is the sender's fault, not a failed delivery.
		return &BadRequestError{Field: "event", Problem: err.Error()}
	case err != nil:
		return fmt.Errorf("%w: publishing pull event: %w", errUnavailable, err)
	}
	d.published = true
	return nil
}

// answer is the JSON body of every reply; GitHub shows it in the
// delivery's log.
type answer struct {
	Delivery string `json:"delivery,omitempty"`
	Result   string `json:"result,omitempty"`
	Error    string `json:"error,omitempty"`
}

func writeAnswer(w http.ResponseWriter, code int, id, text string, refused bool) error {
	a := answer{Delivery: truncate(id), Result: text}
	if refused {
		a = answer{Delivery: truncate(id), Error: text}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(a); err != nil {
		return fmt.Errorf("writing answer: %w", err)
	}
	return nil
}

// logDelivery writes the delivery's one log line: Info when answered 2xx,
// Warn for a refusal, Error when the queue failed. werr is a failure to
// write the answer (GitHub hung up).
func (h *handler) logDelivery(ctx context.Context, d delivery, outcome string, code int, err, werr error, took time.Duration) {
	attrs := []slog.Attr{
		slog.String("delivery", truncate(d.id)),
		slog.String("event", truncate(d.event)),
		slog.String("outcome", outcome),
		slog.Int("status", code),
		slog.Duration("took", took),
	}
	if d.action != "" {
		attrs = append(attrs, slog.String("action", truncate(d.action)))
	}
	if d.repo != "" {
		attrs = append(attrs, slog.String("repo", truncate(d.repo)), slog.Int("pull", d.pull), slog.String("sha", truncate(d.sha)))
	}
	if d.group != "" {
		attrs = append(attrs, slog.String("merge_group", d.group))
	}
	switch {
	case outcome == outcomeIgnored:
		attrs = append(attrs, slog.String("reason", err.Error()))
	case err != nil:
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	if werr != nil {
		attrs = append(attrs, slog.String("write_error", werr.Error()))
	}
	level := slog.LevelInfo
	switch {
	case code >= 500:
		level = slog.LevelError
	case code >= 400:
		level = slog.LevelWarn
	}
	h.log.LogAttrs(ctx, level, "webhook delivery", attrs...)
}

// announceClosed records that a pull request closed and tells workers to
// stop its running tests, when the delivery is sound enough to name it.
func (h *handler) announceClosed(ctx context.Context, pd pullDelivery) {
	a := events.HeadAnnouncement{
		Repo:   events.Repo{Owner: pd.Repository.Owner.Login, Name: pd.Repository.Name},
		Number: pd.Number, SHA: pd.PullRequest.Head.SHA, Closed: true,
	}
	closed := events.PullEvent{Repo: a.Repo, Number: a.Number, HeadSHA: a.SHA, Delivery: "closed", PullUpdatedAt: pd.PullRequest.UpdatedAt.UTC()}
	if pd.validate(closed) != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.publishTimeout)
	defer cancel()
	h.recordHead(ctx, closed, true)
	if h.heads == nil {
		return
	}
	if err := h.heads.AnnounceHead(a); err != nil {
		h.log.Warn("announcing closed pull request", "repo", a.Repo.FullName(), "pull", a.Number, "err", err)
	}
}

// reads reports whether the handler acts on event, and so keeps its body
// once verified; any other event's body is only hashed and dropped.
func (h *handler) reads(event string) bool {
	switch event {
	case eventPing, eventPull, eventComment, eventCheckRun, eventCheckSuite, eventMergeGroup:
		return true
	}
	return false
}
