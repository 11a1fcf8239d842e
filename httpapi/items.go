package httpapi

import (
	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/fsm"
)

// DefaultMaxBatch is the default limit on items in one POST /v1/items.
const DefaultMaxBatch = 10_000

func (s *Server) addItems(c echo.Context) error {
	var items []api.Item
	if err := decodeJSON(c, &items); err != nil {
		return err
	}
	if len(items) > s.cfg.MaxBatch {
		return refuse(api.CodeTooLarge, "a batch may hold at most %d items, got %d", s.cfg.MaxBatch, len(items))
	}
	p := fsm.ItemsAdd{Items: make([]fsm.Item, len(items))}
	for i, it := range items {
		if err := allow(c, fsm.ResourceItems, it.Tenant, fsm.AccessWrite); err != nil {
			return err
		}
		p.Items[i] = fsm.Item{Tenant: it.Tenant, ID: it.ID}
	}
	return reply(c, func(r *fsm.ItemsAdded) api.ItemsResult {
		return api.ItemsResult{Added: r.Added, Duplicates: r.Duplicates, Index: r.Index}
	})(s.apply(c, p))
}

func (s *Server) countItems(c echo.Context) error {
	tenant, err := s.readNamed(c, func(c echo.Context) (string, error) { return nameParam(c, "tenant", "tenant") })
	if err != nil {
		return err
	}
	n, applied := s.node.State().TenantCount(tenant)
	return answer(c, n, applied, nil, func(n *fsm.TenantCount) api.TenantCount {
		return api.TenantCount{Tenant: n.Tenant, Count: n.Count, Index: n.Index}
	})
}
