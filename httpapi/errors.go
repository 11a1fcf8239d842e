package httpapi

// One table maps every error the node and the state machine produce to an
// HTTP status and wire code; handlers only return errors.

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
)

// statusOf is the one error→status table: every wire code, whoever
// decided it (the state machine's rules, this layer's input checks, or the
// node's leadership), answers with the status given here.
var statusOf = map[api.Code]int{
	api.CodeBadRequest:           http.StatusBadRequest,
	api.CodeInvalidName:          http.StatusBadRequest,
	api.CodeNotFound:             http.StatusNotFound,
	api.CodeWrongType:            http.StatusConflict,
	api.CodeConflict:             http.StatusConflict,
	api.CodeOverflow:             http.StatusConflict,
	api.CodeNotMonotonic:         http.StatusConflict,
	api.CodeQueueFull:            http.StatusConflict,
	api.CodePreconditionFailed:   http.StatusPreconditionFailed,
	api.CodeTooLarge:             http.StatusRequestEntityTooLarge,
	api.CodeIdempotencyMismatch:  http.StatusUnprocessableEntity,
	api.CodeNotLeader:            http.StatusTemporaryRedirect,
	api.CodeNoLeader:             http.StatusServiceUnavailable,
	api.CodeTooManyWatchers:      http.StatusServiceUnavailable,
	api.CodeInternal:             http.StatusInternalServerError,
	api.CodeUnauthorized:         http.StatusUnauthorized,
	api.CodeForbidden:            http.StatusForbidden,
	api.CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	api.CodeRequestTimeout:       http.StatusRequestTimeout,
	api.CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
}

// requestError is a refusal this layer decides on its own, before anything
// reaches the node: a malformed query or header, a body over its limit, an
// unknown endpoint. It is not an fsm.Error, because no state machine rule
// refused anything; it carries a wire code all the same, and statusOf gives
// its status.
type requestError struct {
	code api.Code
	msg  string
}

func (e *requestError) Error() string { return e.msg }

// refuse returns a requestError with code and a formatted message.
func refuse(code api.Code, format string, args ...any) error {
	return &requestError{code: code, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return refuse(api.CodeBadRequest, format, args...)
}

func errTooLarge(limit int64) error {
	return refuse(api.CodeTooLarge, "request body is larger than the %d-byte limit", limit)
}

// handleError renders every error as {"error","code"} with its status.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var nl *cluster.NotLeaderError
	if errors.As(err, &nl) && nl.LeaderHTTP != "" && s.shouldForward(c) {
		s.forward(c, s.baseURL(nl.LeaderHTTP))
		return
	}
	h := c.Response().Header()
	if h.Get(api.HeaderIndex) == "" {
		setIndex(c, s.node.State().AppliedIndex())
	}
	status, body := s.errorBody(c, err)
	if status == http.StatusRequestTimeout {
		// What is left of the body is still on its way: the connection
		// cannot carry another request.
		h.Set("Connection", "close")
	}
	if body.Code == api.CodeNotLeader {
		h.Set("Location", body.Leader+c.Request().URL.RequestURI())
		h.Set(api.HeaderLeader, body.Leader)
	}
	if status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", "1")
	}
	if status >= 500 {
		s.logger.Warn("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "status", status, "error", err)
	}
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(status)
	} else {
		werr = c.JSON(status, body)
	}
	if werr != nil {
		s.logger.Debug("failed to write error response", "error", werr)
	}
}

// errorBody renders err as the wire error, with its status from statusOf.
// Only echo's own errors (its router's 404 and 405, and the like) keep the
// status echo chose.
func (s *Server) errorBody(c echo.Context, err error) (int, api.Error) {
	body, ok := s.errorJSON(err)
	var he *echo.HTTPError
	switch {
	case ok:
	case errors.As(err, &he):
		r := c.Request()
		msg := fmt.Sprint(he.Message)
		code := api.CodeBadRequest
		switch {
		case he.Code >= 500:
			code = api.CodeInternal
		case he.Code == http.StatusNotFound:
			code, msg = api.CodeNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)
		case he.Code == http.StatusMethodNotAllowed:
			code, msg = api.CodeMethodNotAllowed, fmt.Sprintf("%s is not a method of %s; it takes %s",
				r.Method, r.URL.Path, c.Response().Header().Get(echo.HeaderAllow))
		case he.Code == http.StatusRequestEntityTooLarge:
			code = api.CodeTooLarge
		}
		return he.Code, api.Error{Error: msg, Code: code}
	default:
		body = api.Error{Error: "internal error: " + err.Error(), Code: api.CodeInternal}
	}
	status, known := statusOf[body.Code]
	if !known {
		status = http.StatusInternalServerError
	}
	return status, body
}

// errorJSON is the wire form of an error countd knows: its code and a
// sentence for people. ok is false for any other error.
func (s *Server) errorJSON(err error) (body api.Error, ok bool) {
	var (
		fe  *fsm.Error
		re  *requestError
		nl  *cluster.NotLeaderError
		mbe *http.MaxBytesError
		fwe *forwardError
	)
	switch {
	case errors.As(err, &fwe):
		return forwardErrorBody(fwe), true
	case errors.As(err, &fe):
		body = api.Error{Error: fe.Message, Code: fe.Code}
		if cur, ok := fe.Current.(*fsm.Counter); ok {
			v := counterJSON(cur)
			body.Current = &v
		}
	case errors.As(err, &re):
		body = api.Error{Error: re.msg, Code: re.code}
	case errors.As(err, &nl) && nl.LeaderHTTP == "":
		body = api.Error{Error: "no leader is known (an election is in progress); retry shortly", Code: api.CodeNoLeader}
	case errors.As(err, &nl):
		body = api.Error{Error: "not the leader", Code: api.CodeNotLeader, Leader: s.baseURL(nl.LeaderHTTP)}
	case errors.Is(err, cluster.ErrUnknownResult):
		body = api.Error{
			Error: "leadership changed before the write was confirmed; it may or may not have been applied, so retry with the same Idempotency-Key",
			Code:  api.CodeNoLeader,
		}
	case errors.Is(err, cluster.ErrTooManyWatchers):
		body = api.Error{Error: err.Error(), Code: api.CodeTooManyWatchers}
	case errors.Is(err, cluster.ErrUnavailable):
		body = api.Error{Error: "the node cannot take writes right now (" + err.Error() + "); retry shortly", Code: api.CodeNoLeader}
	case errors.As(err, &mbe):
		body = api.Error{Error: fmt.Sprintf("request body is larger than the %d-byte limit", mbe.Limit), Code: api.CodeTooLarge}
	default:
		return body, false
	}
	return body, true
}
