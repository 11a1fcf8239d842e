package client

// ACL tokens (SPEC §7). A create or bootstrap chooses the token's accessor
// and secret here when the caller leaves them empty, so the request the
// client retries after an unknown outcome is the same one, its
// Idempotency-Key replays the first answer, and the secret is known either
// way: the cluster keeps only a hash of it.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/countd/countd/api"
)

func tokenPath(accessor string) string { return "/v1/acl/tokens/" + url.PathEscape(accessor) }

// NewSecret returns a random token secret (api.NewSecret).
func NewSecret() string { return api.NewSecret() }

// NewAccessor returns a random accessor (api.NewAccessor).
func NewAccessor() string { return api.NewAccessor() }

func (c *Client) createToken(ctx context.Context, path string, req api.ACLTokenRequest, opts []CallOption) (*api.ACLToken, error) {
	if req.Accessor == "" {
		req.Accessor = NewAccessor()
	}
	if req.Secret == "" {
		req.Secret = NewSecret()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out api.ACLToken
	if err := c.call(ctx, request{method: http.MethodPost, path: path, body: body, write: true, key: applyOpts(opts).key}, &out); err != nil {
		return nil, err
	}
	out.Secret = req.Secret // a replayed answer may not carry it
	return &out, nil
}

// BootstrapACL creates the cluster's first management token; it works once
// per cluster (then conflict). Only Description, Accessor and Secret of req
// are used.
func (c *Client) BootstrapACL(ctx context.Context, req api.ACLTokenRequest, opts ...CallOption) (*api.ACLToken, error) {
	return c.createToken(ctx, "/v1/acl/bootstrap", req, opts)
}

// CreateToken creates a token (a management token's call); the answer holds
// its secret, which the cluster does not keep.
func (c *Client) CreateToken(ctx context.Context, req api.ACLTokenRequest, opts ...CallOption) (*api.ACLToken, error) {
	return c.createToken(ctx, "/v1/acl/tokens", req, opts)
}

// Tokens lists every token, without secrets, every page of them.
func (c *Client) Tokens(ctx context.Context, opts ...CallOption) ([]api.ACLToken, error) {
	var all []api.ACLToken
	for after := ""; ; {
		var page api.ACLTokenList
		if err := c.call(ctx, request{method: http.MethodGet, path: readPath("/v1/acl/tokens", applyOpts(opts), pageQuery(after, 0))}, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Tokens...)
		if page.Next == nil {
			return all, nil
		}
		after = *page.Next
	}
}

// Token reads one token, without its secret.
func (c *Client) Token(ctx context.Context, accessor string, opts ...CallOption) (*api.ACLToken, error) {
	var out api.ACLToken
	err := c.call(ctx, request{method: http.MethodGet, path: readPath(tokenPath(accessor), applyOpts(opts), nil)}, &out)
	return &out, err
}

// DeleteToken deletes a token; it stops working on every node at the
// index of the deletion.
func (c *Client) DeleteToken(ctx context.Context, accessor string, opts ...CallOption) error {
	return c.call(ctx, request{method: http.MethodDelete, path: tokenPath(accessor), write: true, key: applyOpts(opts).key}, nil)
}

// WhoAmI describes the token the client presents.
func (c *Client) WhoAmI(ctx context.Context, opts ...CallOption) (*api.ACLToken, error) {
	var out api.ACLToken
	err := c.call(ctx, request{method: http.MethodGet, path: readPath("/v1/acl/whoami", applyOpts(opts), nil)}, &out)
	return &out, err
}
