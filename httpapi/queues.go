package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/fsm"
)

// Blocking query limits: a wait without ?wait= lasts DefaultWait, and no
// wait lasts longer than MaxWait (longer requests are cut to it, as Consul
// does).
const (
	DefaultWait = 5 * time.Minute
	MaxWait     = 10 * time.Minute
)

func queueID(c echo.Context) (string, error) { return nameParam(c, "id", "queue name") }

func ticketJSON(t *fsm.Ticket) api.Ticket {
	tags := t.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return api.Ticket{ID: t.Queue, ProcessID: t.ProcessID, Counter: t.Counter, Position: t.Position, Tags: tags, FencingToken: t.FencingToken, Index: t.Index, Session: t.Session}
}

func queueJSON(q *fsm.Queue) api.Queue {
	out := api.Queue{
		ID: q.ID, FencingToken: q.FencingToken, Index: q.Index,
		Config:  api.QueueConfig{Min: q.Config.Min, Max: q.Config.Max, Reuse: q.Config.Reuse},
		Members: make([]api.Ticket, len(q.Members)),
	}
	for i, t := range q.Members {
		out.Members[i] = ticketJSON(t)
	}
	return out
}

// getQueue reads a queue; with ?index=N it is a blocking query that answers
// once the queue's last write index passes N, or when the wait runs out.
func (s *Server) getQueue(c echo.Context) error {
	id, err := queueID(c)
	if err != nil {
		return err
	}
	after, blocking, err := uintParam(c, "index")
	if err != nil {
		return err
	}
	wait, err := waitParam(c)
	if err != nil {
		return err
	}
	if err := s.read(c); err != nil {
		return err
	}
	if !blocking {
		q, applied, err := s.node.State().Queue(id)
		return answer(c, q, applied, err, queueJSON)
	}
	release, err := s.node.AcquireWatch()
	if err != nil {
		return err
	}
	defer release()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	w := s.node.Watch(fsm.Key{Kind: fsm.KindQueue, Name: id})
	defer w.Close()
	for done, woken := false, false; ; {
		// Take the channel before reading, so a write between the read and
		// the wait still wakes us.
		changed := w.Changed()
		q, applied, err := s.node.State().Queue(id)
		setIndex(c, applied)
		if err != nil {
			return err
		}
		// A delete leaves no index behind, so a wake that finds the queue
		// gone is an answer. A wake that finds it at or below N is not: a
		// follower behind the node that gave out N is catching up on
		// writes the caller has already seen.
		if done || q.Index > after || (woken && q.Index == 0) {
			return c.JSON(http.StatusOK, queueJSON(q))
		}
		select {
		case <-changed:
			woken = true
		case <-timer.C:
			done = true
		case <-s.closing:
			done = true
		case <-c.Request().Context().Done():
			return nil // the client went away; nobody is left to answer
		}
	}
}

func (s *Server) getQueueMember(c echo.Context) error {
	id, err := queueID(c)
	if err != nil {
		return err
	}
	process, err := s.readNamed(c, func(c echo.Context) (string, error) { return nameParam(c, "process", "process id") })
	if err != nil {
		return err
	}
	t, applied, err := s.node.State().QueueMember(id, process)
	return answer(c, t, applied, err, ticketJSON)
}

func (s *Server) joinQueue(c echo.Context) error {
	var req api.JoinRequest
	id, err := named(c, queueID, &req)
	if err != nil {
		return err
	}
	return reply(c, ticketJSON)(s.apply(c, fsm.QueueJoin{ID: id, ProcessID: req.ProcessID, Tags: req.Tags, Session: req.Session}))
}

func (s *Server) leaveQueue(c echo.Context) error {
	var req api.LeaveRequest
	id, err := named(c, queueID, &req)
	if err != nil {
		return err
	}
	return reply(c, func(l *fsm.Leave) api.LeaveResult {
		return api.LeaveResult{ID: l.Queue, FencingToken: l.FencingToken, Index: l.Index}
	})(s.apply(c, fsm.QueueLeave{ID: id, ProcessID: req.ProcessID}))
}

func (s *Server) configureQueue(c echo.Context) error {
	var req api.QueueConfigRequest
	id, err := named(c, queueID, &req)
	if err != nil {
		return err
	}
	return reply(c, queueJSON)(s.apply(c, fsm.QueueConfigure{ID: id, Min: req.Min, Max: req.Max, Reuse: req.Reuse}))
}

func (s *Server) deleteQueue(c echo.Context) error {
	id, err := queueID(c)
	if err != nil {
		return err
	}
	return s.remove(c, fsm.QueueDelete{ID: id})
}

// waitParam parses ?wait= as a Go duration, capped at MaxWait.
func waitParam(c echo.Context) (time.Duration, error) {
	s := c.QueryParam("wait")
	if s == "" {
		return DefaultWait, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, badRequest("query parameter wait must be a duration such as 30s or 5m, got %q", s)
	}
	return min(d, MaxWait), nil
}
