package client

// Tenant item counts: exact counts of distinct item IDs per tenant.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/countd/countd/api"
)

// AddItems records a batch of items atomically: either every item is
// counted (an item already known counts as a duplicate) or, if one is
// invalid, none is. A batch larger than the node's limit is a too_large
// *Error; split it before sending.
func (c *Client) AddItems(ctx context.Context, items []api.Item, opts ...CallOption) (*api.ItemsResult, error) {
	if items == nil {
		items = []api.Item{} // "[]", so the server names the real problem: an empty batch
	}
	body, err := json.Marshal(items)
	if err != nil {
		return nil, fmt.Errorf("encode items: %w", err)
	}
	var out api.ItemsResult
	err = c.call(ctx, request{method: http.MethodPost, path: "/v1/items", body: body, write: true, key: applyOpts(opts).key}, &out)
	return &out, err
}

// ItemCount reads the number of distinct items of tenant (0 if it never had
// any).
func (c *Client) ItemCount(ctx context.Context, tenant string, opts ...CallOption) (*api.TenantCount, error) {
	var out api.TenantCount
	path := readPath("/v1/items/"+url.PathEscape(tenant)+"/count", applyOpts(opts), nil)
	err := c.call(ctx, request{method: http.MethodGet, path: path}, &out)
	return &out, err
}
