package client

// Sessions (SPEC §9): leases that end when their holder stops renewing
// them.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/countd/countd/api"
)

func sessionPath(id string) string { return "/v1/sessions/" + url.PathEscape(id) }

// CreateSession starts a session that ends when the leader has not seen a
// renew for ttl (1s to 24h); name is optional. A retry carries the same
// Idempotency-Key, so it never starts a second session.
func (c *Client) CreateSession(ctx context.Context, ttl time.Duration, name string, opts ...CallOption) (*api.Session, error) {
	body, err := json.Marshal(api.SessionRequest{TTL: ttl.String(), Name: name})
	if err != nil {
		return nil, fmt.Errorf("encode session: %w", err)
	}
	var out api.Session
	err = c.call(ctx, request{method: http.MethodPost, path: "/v1/sessions", body: body, write: true, key: applyOpts(opts).key}, &out)
	return &out, err
}

// RenewSession restarts a session's TTL. A session that has ended is a
// not_found *Error: its holder has lost whatever the session held.
func (c *Client) RenewSession(ctx context.Context, id string, opts ...CallOption) (*api.Session, error) {
	var out api.Session
	err := c.call(ctx, request{method: http.MethodPost, path: sessionPath(id) + "/renew", write: true, key: applyOpts(opts).key}, &out)
	return &out, err
}

// DeleteSession ends a session; ending one that has already ended is not an
// error.
func (c *Client) DeleteSession(ctx context.Context, id string, opts ...CallOption) error {
	return c.call(ctx, request{method: http.MethodDelete, path: sessionPath(id), write: true, key: applyOpts(opts).key}, nil)
}

// Session reads one session.
func (c *Client) Session(ctx context.Context, id string, opts ...CallOption) (*api.Session, error) {
	var out api.Session
	err := c.call(ctx, request{method: http.MethodGet, path: readPath(sessionPath(id), applyOpts(opts), nil)}, &out)
	return &out, err
}

// SessionPage reads one page of sessions in ID order, after after (""
// for the first page), at most limit of them (0: the server's default).
func (c *Client) SessionPage(ctx context.Context, after string, limit int, opts ...CallOption) (*api.SessionList, error) {
	var out api.SessionList
	err := c.call(ctx, request{method: http.MethodGet, path: readPath("/v1/sessions", applyOpts(opts), pageQuery(after, limit))}, &out)
	return &out, err
}
