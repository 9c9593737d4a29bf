package webhook

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrIgnored marks an authentic delivery that asks for no build: an action
// or event YourCI does not act on. Errors wrapping it carry the reason. The
// receiver answers them 202 so GitHub's delivery log stays green.
var ErrIgnored = errors.New("ignored")

// ignored wraps ErrIgnored with a reason.
func ignored(reason string) error {
	return fmt.Errorf("%w: %s", ErrIgnored, reason)
}

// BadRequestError reports a delivery whose content could not have come from
// GitHub: malformed JSON, or a field outside what GitHub ever sends. The
// receiver answers 400 and publishes nothing.
type BadRequestError struct {
	// Field names the offending part of the delivery, as a JSON path or a
	// header name.
	Field string
	// Problem says what is wrong with it.
	Problem string
}

func (e *BadRequestError) Error() string {
	return fmt.Sprintf("bad delivery: %s %s", e.Field, e.Problem)
}

// Refusals raised by the handler itself. Each wraps the underlying cause.
var (
	errUnauthorized = errors.New("signature verification failed")
	errTooLarge     = errors.New("body too large")
	errMethod       = errors.New("method not allowed")
	errUnavailable  = errors.New("event queue unavailable")
)

// Refusal reasons, used as the "reason" label of the refused-deliveries
// metric. The set is fixed so outside input cannot grow it.
const (
	reasonUnauthorized = "unauthorized"
	reasonTooLarge     = "too_large"
	reasonBadRequest   = "bad_request"
	reasonMethod       = "method"
	reasonUnavailable  = "unavailable"
	reasonInternal     = "internal"
	reasonBusy         = "busy"
	reasonSlowBody     = "slow_body"
)

// statusFor is the one place where a handling error becomes an HTTP
// answer: the status code, the refusal reason for metrics (empty when the
// delivery was not refused) and the text GitHub shows in its delivery log.
// The text never carries internal detail such as a NATS error; that goes
// to the log.
func statusFor(err error) (code int, reason, text string) {
	var bad *BadRequestError
	switch {
	case err == nil:
		return http.StatusAccepted, "", "queued"
	case errors.Is(err, ErrIgnored):
		return http.StatusAccepted, "", err.Error()
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized, reasonUnauthorized, errUnauthorized.Error()
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, reasonTooLarge, err.Error()
	case errors.As(err, &bad):
		return http.StatusBadRequest, reasonBadRequest, bad.Error()
	case errors.Is(err, errBusy):
		return http.StatusServiceUnavailable, reasonBusy, errBusy.Error()
	case errors.Is(err, errSlowBody):
		return http.StatusRequestTimeout, reasonSlowBody, errSlowBody.Error()
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed, reasonMethod, errMethod.Error()
	case errors.Is(err, errUnavailable):
		return http.StatusServiceUnavailable, reasonUnavailable, errUnavailable.Error()
	default:
		return http.StatusInternalServerError, reasonInternal, "internal error"
	}
}
