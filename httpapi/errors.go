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

var statusOf = map[fsm.Code]int{
	fsm.CodeBadRequest:          http.StatusBadRequest,
	fsm.CodeInvalidName:         http.StatusBadRequest,
	fsm.CodeNotFound:            http.StatusNotFound,
	fsm.CodeWrongType:           http.StatusConflict,
	fsm.CodeConflict:            http.StatusConflict,
	fsm.CodeOverflow:            http.StatusConflict,
	fsm.CodeNotMonotonic:        http.StatusConflict,
	fsm.CodeQueueFull:           http.StatusConflict,
	fsm.CodePreconditionFailed:  http.StatusPreconditionFailed,
	fsm.CodeTooLarge:            http.StatusRequestEntityTooLarge,
	fsm.CodeIdempotencyMismatch: http.StatusUnprocessableEntity,
}

func badRequest(format string, args ...any) error {
	return &fsm.Error{Code: fsm.CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

func errTooLarge(limit int64) error {
	return &fsm.Error{Code: fsm.CodeTooLarge, Message: fmt.Sprintf("request body is larger than the %d-byte limit", limit)}
}

// handleError renders every error as {"error","code"} with its status.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var nl *cluster.NotLeaderError
	if errors.As(err, &nl) && nl.LeaderHTTP != "" && s.shouldForward(c) {
		s.forward(c, "http://"+nl.LeaderHTTP)
		return
	}
	h := c.Response().Header()
	if h.Get(api.HeaderIndex) == "" {
		setIndex(c, s.node.State().AppliedIndex())
	}
	status, body := s.errorBody(err)
	if body.Code == api.CodeNotLeader {
		h.Set("Location", body.Leader+c.Request().URL.RequestURI())
		h.Set(api.HeaderLeader, body.Leader)
	}
	if status == http.StatusServiceUnavailable {
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

func (s *Server) errorBody(err error) (int, api.Error) {
	var (
		fe   *fsm.Error
		nl   *cluster.NotLeaderError
		mbe  *http.MaxBytesError
		he   *echo.HTTPError
		fwe  *forwardError
		body api.Error
	)
	switch {
	case errors.As(err, &fwe):
		return forwardErrorBody(fwe)
	case errors.As(err, &fe):
		body = api.Error{Error: fe.Message, Code: api.Code(fe.Code)}
		if cur, ok := fe.Current.(*fsm.Counter); ok {
			v := counterJSON(cur)
			body.Current = &v
		}
		status, ok := statusOf[fe.Code]
		if !ok {
			status = http.StatusInternalServerError
		}
		return status, body
	case errors.As(err, &nl):
		if nl.LeaderHTTP == "" {
			return http.StatusServiceUnavailable, api.Error{Error: "no leader is known (an election is in progress); retry shortly", Code: api.CodeNoLeader}
		}
		leader := "http://" + nl.LeaderHTTP
		return http.StatusTemporaryRedirect, api.Error{Error: "not the leader", Code: api.CodeNotLeader, Leader: leader}
	case errors.Is(err, cluster.ErrUnknownResult):
		return http.StatusServiceUnavailable, api.Error{
			Error: "leadership changed before the write was confirmed; it may or may not have been applied, so retry with the same Idempotency-Key",
			Code:  api.CodeNoLeader,
		}
	case errors.Is(err, cluster.ErrTooManyWatchers):
		return http.StatusServiceUnavailable, api.Error{Error: err.Error(), Code: api.CodeTooManyWatchers}
	case errors.Is(err, cluster.ErrUnavailable):
		return http.StatusServiceUnavailable, api.Error{Error: "the node cannot take writes right now (" + err.Error() + "); retry shortly", Code: api.CodeNoLeader}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, api.Error{Error: fmt.Sprintf("request body is larger than the %d-byte limit", mbe.Limit), Code: api.CodeTooLarge}
	case errors.As(err, &he):
		code := api.CodeBadRequest
		switch he.Code {
		case http.StatusNotFound:
			code = api.CodeNotFound
		case http.StatusRequestEntityTooLarge:
			code = api.CodeTooLarge
		}
		if he.Code >= 500 {
			code = api.CodeInternal
		}
		return he.Code, api.Error{Error: fmt.Sprint(he.Message), Code: code}
	default:
		return http.StatusInternalServerError, api.Error{Error: "internal error: " + err.Error(), Code: api.CodeInternal}
	}
}
