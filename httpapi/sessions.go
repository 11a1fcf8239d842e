package httpapi

// Sessions (SPEC §9). Under ACLs a session rule's prefix is matched
// against "", so only a rule for every session (prefix "") grants access:
// a session is named by a random ID, and a rule on a prefix of its name
// could not be checked on a follower that has not seen it yet.

import (
	"context"
	"crypto/sha256"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/fsm"
)

func sessionID(c echo.Context) (string, error) {
	id := c.Param("id")
	if err := fsm.CheckAccessor(id); err != nil {
		return "", refuse(api.CodeNotFound, "session %q does not exist: session IDs hold letters, digits and dashes only", id)
	}
	return id, nil
}

// sessionJSON renders a session with the time it has left as this node
// sees it.
func (s *Server) sessionJSON(v *fsm.Session) api.Session {
	left := s.node.SessionExpiresIn(v)
	return api.Session{ID: v.ID, Name: v.Name, TTL: v.TTL.String(), ExpiresInMs: max(left.Milliseconds(), 0), Index: v.Index}
}

// newSessionID is the ID a create gets: random, or derived from the
// request's Idempotency-Key so that a retry carries the same command and
// replays instead of being refused as a different request.
func newSessionID(key string) string {
	if key == "" {
		return api.NewAccessor()
	}
	h := sha256.Sum256([]byte("countd session " + key))
	return api.UUIDFrom([16]byte(h[:16]))
}

func (s *Server) createSession(c echo.Context) error {
	if err := allow(c, fsm.ResourceSessions, "", fsm.AccessWrite); err != nil {
		return err
	}
	var req api.SessionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ttl, err := time.ParseDuration(req.TTL)
	if err != nil {
		return badRequest("ttl must be a duration such as 10s or 1m30s, from %s to %s; got %q", fsm.MinSessionTTL, fsm.MaxSessionTTL, req.TTL)
	}
	res, err := s.write(c, func(ctx context.Context, key string) (fsm.Result, error) {
		return s.node.Apply(ctx, fsm.Command{Payload: fsm.SessionCreate{ID: newSessionID(key), Name: req.Name, TTL: ttl}, IdempotencyKey: key})
	})
	return reply(c, s.sessionJSON)(res, err)
}

func (s *Server) renewSession(c echo.Context) error {
	if err := allow(c, fsm.ResourceSessions, "", fsm.AccessWrite); err != nil {
		return err
	}
	id, err := sessionID(c)
	if err != nil {
		return err
	}
	return reply(c, s.sessionJSON)(s.apply(c, fsm.SessionRenew{ID: id}))
}

func (s *Server) deleteSession(c echo.Context) error {
	if err := allow(c, fsm.ResourceSessions, "", fsm.AccessWrite); err != nil {
		return err
	}
	id, err := sessionID(c)
	if err != nil {
		return err
	}
	return s.remove(c, fsm.SessionDelete{ID: id})
}

func (s *Server) getSession(c echo.Context) error {
	if err := allow(c, fsm.ResourceSessions, "", fsm.AccessRead); err != nil {
		return err
	}
	id, err := s.readNamed(c, sessionID)
	if err != nil {
		return err
	}
	v, applied, err := s.node.State().Session(id)
	return answer(c, v, applied, err, s.sessionJSON)
}

func (s *Server) listSessions(c echo.Context) error {
	if err := allow(c, fsm.ResourceSessions, "", fsm.AccessRead); err != nil {
		return err
	}
	after, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	if err := s.read(c); err != nil {
		return err
	}
	list, more, applied := s.node.State().SessionPage(after, limit, nil)
	return answer(c, list, applied, nil, func(list []*fsm.Session) api.SessionList {
		out := api.SessionList{Sessions: make([]api.Session, len(list))}
		for i, v := range list {
			out.Sessions[i] = s.sessionJSON(v)
		}
		if more {
			out.Next = &list[len(list)-1].ID
		}
		return out
	})
}
