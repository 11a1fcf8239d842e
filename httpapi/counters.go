package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/fsm"
)

func (s *Server) counterRoutes(g *echo.Group) {
	g.GET("/counters", s.listCounters)
	g.GET("/counters/:id", s.getCounter)
	g.POST("/counters/:id/next", s.nextCounter)
	g.POST("/counters/:id/add", s.addCounter)
	g.PUT("/counters/:id", s.setCounter)
	g.DELETE("/counters/:id", s.deleteCounter)
}

func counterJSON(c *fsm.Counter) api.Counter {
	return api.Counter{ID: c.ID, Value: c.Value, Increment: c.Increment, Offset: c.Offset, Monotonic: c.Monotonic, Index: c.Index}
}

func counterID(c echo.Context) (string, error) { return nameParam(c, "id", "counter name") }

func (s *Server) getCounter(c echo.Context) error {
	id, err := counterID(c)
	if err != nil {
		return err
	}
	if err := s.read(c); err != nil {
		return err
	}
	ctr, applied, err := s.node.State().Counter(id)
	setIndex(c, applied)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, counterJSON(ctr))
}

func (s *Server) listCounters(c echo.Context) error {
	prefix := c.QueryParam("prefix")
	if err := s.read(c); err != nil {
		return err
	}
	list, applied := s.node.State().Counters(prefix)
	setIndex(c, applied)
	out := api.CounterList{Counters: make([]api.Counter, len(list))}
	for i, ctr := range list {
		out.Counters[i] = counterJSON(ctr)
	}
	return c.JSON(http.StatusOK, out)
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
	res, err := s.apply(c, fsm.CounterNext{ID: id, Count: count})
	if err != nil {
		return err
	}
	m := res.Value.(*fsm.Mint)
	return c.JSON(http.StatusOK, api.Mint{ID: m.ID, Value: m.Last, First: m.First, Count: m.Count, Step: m.Step, Index: m.Index})
}

func (s *Server) addCounter(c echo.Context) error {
	id, err := counterID(c)
	if err != nil {
		return err
	}
	var req api.AddRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Delta == nil {
		return badRequest("add needs a \"delta\"")
	}
	res, err := s.apply(c, fsm.CounterAdd{ID: id, Delta: *req.Delta, Default: req.Default})
	if err != nil {
		return err
	}
	ctr := res.Value.(*fsm.Counter)
	return c.JSON(http.StatusOK, api.AddResult{ID: ctr.ID, Value: ctr.Value, Index: ctr.Index})
}

func (s *Server) setCounter(c echo.Context) error {
	id, err := counterID(c)
	if err != nil {
		return err
	}
	var req api.SetRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	res, err := s.apply(c, fsm.CounterSet{ID: id, Value: req.Value, Increment: req.Increment, Offset: req.Offset, Monotonic: req.Monotonic, IfValue: req.IfValue})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, counterJSON(res.Value.(*fsm.Counter)))
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
	if _, err := s.apply(c, fsm.CounterDelete{ID: id, Force: force}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
