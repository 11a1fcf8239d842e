package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/countd/countd/api"
)

func counterPath(id string) string { return "/v1/counters/" + url.PathEscape(id) }

// Counter reads a counter (linearizable unless Stale() is given).
func (c *Client) Counter(ctx context.Context, id string, opts ...CallOption) (*api.Counter, error) {
	var out api.Counter
	err := c.call(ctx, request{method: http.MethodGet, path: readPath(counterPath(id), applyOpts(opts), nil)}, &out)
	return &out, err
}

// Counters lists counters whose IDs start with prefix, every page of them.
func (c *Client) Counters(ctx context.Context, prefix string, opts ...CallOption) ([]api.Counter, error) {
	var all []api.Counter
	for after := ""; ; {
		page, err := c.CounterPage(ctx, prefix, after, 0, opts...)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Counters...)
		if page.Next == nil {
			return all, nil
		}
		after = *page.Next
	}
}

// CounterPage reads one page of counters whose IDs start with prefix and
// sort after after: at most limit (0: the server's default, 1000).
func (c *Client) CounterPage(ctx context.Context, prefix, after string, limit int, opts ...CallOption) (*api.CounterList, error) {
	q := pageQuery(after, limit)
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	var out api.CounterList
	err := c.call(ctx, request{method: http.MethodGet, path: readPath("/v1/counters", applyOpts(opts), q)}, &out)
	return &out, err
}

// pageQuery is the query of one page of a list: after the name after (""
// for the first page), at most limit items (0: the server's default).
func pageQuery(after string, limit int) url.Values {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

// Next mints count IDs (First … Value, Step apart) from counter id.
func (c *Client) Next(ctx context.Context, id string, count int64, opts ...CallOption) (*api.Mint, error) {
	path := counterPath(id) + "/next"
	if count != 1 {
		path += "?count=" + strconv.FormatInt(count, 10)
	}
	var out api.Mint
	err := c.call(ctx, request{method: http.MethodPost, path: path, write: true, key: applyOpts(opts).key}, &out)
	return &out, err
}

// Add adds delta to counter id; a counter never written starts at def (0
// when nil).
func (c *Client) Add(ctx context.Context, id string, delta int64, def *int64, opts ...CallOption) (*api.AddResult, error) {
	body, err := json.Marshal(api.AddRequest{Delta: &delta, Default: def})
	if err != nil {
		return nil, err
	}
	var out api.AddResult
	err = c.call(ctx, request{method: http.MethodPost, path: counterPath(id) + "/add", body: body, write: true, key: applyOpts(opts).key}, &out)
	return &out, err
}

// Set sets counter fields; IfValue makes it a compare-and-set.
func (c *Client) Set(ctx context.Context, id string, req api.SetRequest, opts ...CallOption) (*api.Counter, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out api.Counter
	err = c.call(ctx, request{method: http.MethodPut, path: counterPath(id), body: body, write: true, key: applyOpts(opts).key}, &out)
	return &out, err
}

// DeleteCounter resets a counter to its defaults; force is needed for a
// monotonic counter.
func (c *Client) DeleteCounter(ctx context.Context, id string, force bool, opts ...CallOption) error {
	path := counterPath(id)
	if force {
		path += "?force=true"
	}
	return c.call(ctx, request{method: http.MethodDelete, path: path, write: true, key: applyOpts(opts).key}, nil)
}
