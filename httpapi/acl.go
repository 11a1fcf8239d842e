package httpapi

// ACL enforcement (SPEC §7). With Config.ACL every request but /healthz,
// /readyz and the one-time bootstrap presents "Authorization: Bearer
// <secret>"; the node hashes the secret and looks the hash up in its own
// state (O(1)). The permission a route needs is declared with the route
// (routes.go) and checked in authorize, a middleware that runs after
// routing and before any handler: a missing token (401) or one without the
// permission (403) is refused where it arrives, before a follower would
// redirect or forward. A token a follower does not know may be one it has
// not applied yet, so that request goes on to the leader, which decides: a
// token acknowledged as created is never refused for a follower's lag.

import (
	"cmp"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/fsm"
)

// perm is what a route needs.
type perm struct {
	// open routes need no token at all.
	open bool
	// resource and access name the permission; param, when set, is the
	// path parameter holding the object's name.
	resource, access, param string
	// inHandler marks routes whose names are not in the path (a batch of
	// items, a list): authorize only authenticates, and the handler checks
	// each name (allowed, filter).
	inHandler bool
}

var (
	openRoute    = perm{open: true}
	anyToken     = perm{inHandler: true}
	management   = perm{resource: "", access: "management"}
	clusterRead  = perm{resource: fsm.ResourceCluster, access: fsm.AccessRead}
	clusterWrite = perm{resource: fsm.ResourceCluster, access: fsm.AccessWrite}
)

// onName is access on the object named in path parameter param.
func onName(resource, access, param string) perm {
	return perm{resource: resource, access: access, param: param}
}

// inHandler is access on names the handler finds (a batch, a list).
func inHandler(resource, access string) perm {
	return perm{resource: resource, access: access, inHandler: true}
}

// tokenKey is where authorize keeps the request's token in the echo
// context.
const tokenKey = "countd.acl.token"

// authorize authenticates the request and checks the permission its route
// needs, before the handler runs.
func (s *Server) authorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !s.cfg.ACL {
			return next(c)
		}
		p, known := s.perms[c.Request().Method+" "+c.Path()]
		if p.open {
			return next(c)
		}
		tok, err := s.authenticate(c)
		if err != nil {
			return err
		}
		c.Set(tokenKey, tok)
		switch {
		case !known:
			// No route for this method and path: the 404 or 405 that
			// follows serves nothing. (Every route is registered from the
			// routes table, with its permission.)
		case p.access == "management":
			if !tok.Management {
				return forbidden("managing ACL tokens needs a management token")
			}
		case p.inHandler:
		default:
			name := ""
			if p.param != "" {
				if name, err = url.PathUnescape(c.Param(p.param)); err != nil {
					return next(c) // the handler refuses the malformed name itself
				}
			}
			if err := allowed(tok, p.resource, name, p.access); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// authenticate finds the token the request presents.
func (s *Server) authenticate(c echo.Context) (*fsm.ACLToken, error) {
	h := c.Request().Header.Get("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="countd"`)
		return nil, refuse(api.CodeUnauthorized, "ACLs are on: send a token as \"Authorization: Bearer <secret>\"")
	}
	tok, ok := s.node.State().ACLLookup(fsm.HashSecret(strings.TrimSpace(secret)))
	if !ok {
		// A follower a little behind may not have applied a token the
		// leader has already acknowledged as created: only the leader can
		// say a token does not exist, so the request goes on to it (307,
		// or forwarded), and the leader decides.
		if err := s.node.NotLeader(); err != nil {
			return nil, err
		}
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="countd", error="invalid_token"`)
		return nil, refuse(api.CodeUnauthorized, "the token is not known to this node (it was never created, or it was deleted)")
	}
	return tok, nil
}

func forbidden(format string, args ...any) error { return refuse(api.CodeForbidden, format, args...) }

// allowed refuses, naming the missing permission, unless tok grants access
// on the named object of resource.
func allowed(tok *fsm.ACLToken, resource, name, access string) error {
	if tok.Allows(resource, name, access) {
		return nil
	}
	if resource == fsm.ResourceCluster {
		return forbidden("this token lacks %s:%s", resource, access)
	}
	return forbidden("this token lacks %s:%s on %q", resource, access, name)
}

// requestToken is the token authorize found; nil with ACLs off.
func requestToken(c echo.Context) *fsm.ACLToken {
	tok, _ := c.Get(tokenKey).(*fsm.ACLToken)
	return tok
}

// allow is allowed for handlers that check names themselves; with ACLs off
// everything is allowed.
func allow(c echo.Context, resource, name, access string) error {
	if tok := requestToken(c); tok != nil {
		return allowed(tok, resource, name, access)
	}
	return nil
}

// visible reports whether the request may read the named object of a
// resource, for lists that leave out what a token may not see.
func visible(c echo.Context, resource, name string) bool {
	tok := requestToken(c)
	return tok == nil || tok.Allows(resource, name, fsm.AccessRead)
}

// aclOnly refuses an ACL endpoint on a node without -acl: tokens made on
// an open cluster would let whoever made them in once ACLs are turned on.
func (s *Server) aclOnly(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !s.cfg.ACL {
			return badRequest("ACLs are off on this node; start every node with -acl first")
		}
		return h(c)
	}
}

// secretOrNew checks a secret the client chose, or makes one.
func secretOrNew(secret string) (string, error) {
	if secret == "" {
		return api.NewSecret(), nil
	}
	if len(secret) < 16 || len(secret) > 128 {
		return "", badRequest("a token's secret must be 16 to 128 characters, got %d", len(secret))
	}
	for i := 0; i < len(secret); i++ {
		if secret[i] <= ' ' || secret[i] > '~' {
			return "", badRequest("a token's secret must be printable ASCII without spaces")
		}
	}
	return secret, nil
}

func tokenJSON(t *fsm.ACLToken, secret string) api.ACLToken {
	out := api.ACLToken{Accessor: t.Accessor, Secret: secret, Description: t.Description, Management: t.Management,
		Rules: make([]api.ACLRule, len(t.Rules)), Index: t.Index}
	for i, r := range t.Rules {
		out.Rules[i] = api.ACLRule{Resource: r.Resource, Prefix: r.Prefix, Access: r.Access}
	}
	return out
}

func (s *Server) aclBootstrap(c echo.Context) error {
	var req api.ACLTokenRequest
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	if req.Management || len(req.Rules) > 0 {
		return badRequest("the bootstrap token is a management token; give only a description and, optionally, a secret")
	}
	return s.createToken(c, req, func(accessor string, h fsm.SecretHash) fsm.Payload {
		return fsm.ACLBootstrap{Accessor: accessor, SecretHash: h, Description: cmp.Or(req.Description, "bootstrap management token")}
	})
}

func (s *Server) aclCreate(c echo.Context) error {
	var req api.ACLTokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	return s.createToken(c, req, func(accessor string, h fsm.SecretHash) fsm.Payload {
		p := fsm.ACLTokenCreate{Accessor: accessor, SecretHash: h, Description: req.Description,
			Management: req.Management, Rules: make([]fsm.ACLRule, len(req.Rules))}
		for i, r := range req.Rules {
			p.Rules[i] = fsm.ACLRule{Resource: r.Resource, Prefix: r.Prefix, Access: r.Access}
		}
		return p
	})
}

// createToken applies the command payload makes from the request's
// accessor and secret (or new ones) and answers with the token, secret
// included: the only time it is shown.
func (s *Server) createToken(c echo.Context, req api.ACLTokenRequest, payload func(accessor string, h fsm.SecretHash) fsm.Payload) error {
	secret, err := secretOrNew(req.Secret)
	if err != nil {
		return err
	}
	accessor := req.Accessor
	if accessor == "" {
		accessor = api.NewAccessor()
	}
	return reply(c, func(t *fsm.ACLToken) api.ACLToken { return tokenJSON(t, secret) })(s.apply(c, payload(accessor, fsm.HashSecret(secret))))
}

func (s *Server) aclWhoami(c echo.Context) error {
	if err := s.read(c); err != nil {
		return err
	}
	setIndex(c, s.node.State().AppliedIndex())
	return c.JSON(http.StatusOK, tokenJSON(requestToken(c), ""))
}

func (s *Server) aclList(c echo.Context) error {
	after, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	if err := s.read(c); err != nil {
		return err
	}
	toks, more, applied := s.node.State().ACLTokenPage(after, limit)
	return answer(c, toks, applied, nil, func(toks []*fsm.ACLToken) api.ACLTokenList {
		out := api.ACLTokenList{Tokens: make([]api.ACLToken, len(toks))}
		for i, t := range toks {
			out.Tokens[i] = tokenJSON(t, "")
		}
		if more {
			out.Next = &toks[len(toks)-1].Accessor
		}
		return out
	})
}

func accessorParam(c echo.Context) (string, error) {
	a := c.Param("accessor")
	return a, fsm.CheckAccessor(a)
}

func (s *Server) aclGet(c echo.Context) error {
	a, err := s.readNamed(c, accessorParam)
	if err != nil {
		return err
	}
	tok, applied, err := s.node.State().ACLTokenByAccessor(a)
	return answer(c, tok, applied, err, func(t *fsm.ACLToken) api.ACLToken { return tokenJSON(t, "") })
}

func (s *Server) aclDelete(c echo.Context) error {
	a, err := accessorParam(c)
	if err != nil {
		return err
	}
	return s.remove(c, fsm.ACLTokenDelete{Accessor: a})
}
