package httpapi

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/fsm"
)

func counterJSON(c *fsm.Counter) api.Counter {
	return api.Counter{ID: c.ID, Value: c.Value, Increment: c.Increment, Offset: c.Offset, Monotonic: c.Monotonic, Cache: c.Cache, Index: c.Index}
}

func counterID(c echo.Context) (string, error) { return nameParam(c, "id", "counter name") }

func (s *Server) getCounter(c echo.Context) error {
	id, err := s.readNamed(c, counterID)
	if err != nil {
		return err
	}
	ctr, applied, err := s.node.State().Counter(id)
	s.showCached(ctr)
	return answer(c, ctr, applied, err, counterJSON)
}

// showCached makes a cached counter read on the leader show the last value
// minted from memory rather than the end of the block reserved in the log
// (SPEC §8); elsewhere the log's value stands, at least every value minted.
func (s *Server) showCached(ctr *fsm.Counter) {
	if v, ok := s.node.CachedValue(ctr); ok {
		ctr.Value = v
	}
}

// listCounters answers one page of counters, in ID order, leaving out
// those the request's token may not read.
func (s *Server) listCounters(c echo.Context) error {
	prefix := c.QueryParam("prefix")
	after, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	if err := s.read(c); err != nil {
		return err
	}
	keep := func(id string) bool { return visible(c, fsm.ResourceCounters, id) }
	list, more, applied := s.node.State().CounterPage(prefix, after, limit, keep)
	return answer(c, list, applied, nil, func(list []*fsm.Counter) api.CounterList {
		out := api.CounterList{Counters: make([]api.Counter, len(list))}
		for i, ctr := range list {
			s.showCached(ctr)
			out.Counters[i] = counterJSON(ctr)
		}
		if more {
			out.Next = &list[len(list)-1].ID
		}
		return out
	})
}

func (s *Server) nextCounter(c echo.Context) error {
	id, err := counterID(c)
	if err != nil {
		return err
	}
	count, err := intParam(c, "count", 1)
	if err != nil {
		return err
	}
	return reply(c, func(m *fsm.Mint) api.Mint {
		return api.Mint{ID: m.ID, Value: m.Last, First: m.First, Count: m.Count, Step: m.Step, Index: m.Index}
	})(s.write(c, func(ctx context.Context, key string) (fsm.Result, error) {
		return s.node.Next(ctx, id, count, key)
	}))
}

func (s *Server) addCounter(c echo.Context) error {
	var req api.AddRequest
	id, err := named(c, counterID, &req)
	if err != nil {
		return err
	}
	if req.Delta == nil {
		return badRequest("add needs a \"delta\"")
	}
	return reply(c, func(ctr *fsm.Counter) api.AddResult {
		return api.AddResult{ID: ctr.ID, Value: ctr.Value, Index: ctr.Index}
	})(s.apply(c, fsm.CounterAdd{ID: id, Delta: *req.Delta, Default: req.Default}))
}

func (s *Server) setCounter(c echo.Context) error {
	var req api.SetRequest
	id, err := named(c, counterID, &req)
	if err != nil {
		return err
	}
	p := fsm.CounterSet{ID: id, Value: req.Value, Increment: req.Increment, Offset: req.Offset, Monotonic: req.Monotonic, IfValue: req.IfValue, Cache: req.Cache}
	return reply(c, counterJSON)(s.apply(c, p))
}

func (s *Server) deleteCounter(c echo.Context) error {
	id, err := counterID(c)
	if err != nil {
		return err
	}
	force, err := boolParam(c, "force")
	if err != nil {
		return err
	}
	return s.remove(c, fsm.CounterDelete{ID: id, Force: force})
}
