// Package httpapi serves countd's HTTP API with labstack/echo: it validates
// input, turns requests into fsm commands or reads on a cluster node, and
// renders JSON. Errors map to statuses in one table (errors.go); followers
// answer writes and linearizable reads with a TRY-style 307 to the leader,
// or with Config.ForwardWrites proxy them to it (forward.go). GET /metrics
// serves Prometheus metrics (metrics.go).
package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
)

// Node is what the HTTP layer needs from a cluster node. *cluster.Node
// implements it.
type Node interface {
	// Apply validates and replicates a command; see cluster.Node.Apply for
	// its errors. Invalid input is refused on any node, leader or not.
	Apply(ctx context.Context, cmd fsm.Command) (fsm.Result, error)
	// ReadBarrier returns nil once a read at consistency c may begin.
	ReadBarrier(ctx context.Context, c cluster.Consistency) error
	// State is the local state machine to read from.
	State() *fsm.State
	// Status is the node's view of the cluster.
	Status() cluster.Status
	// LastContact is the time since the leader was last heard from.
	LastContact() time.Duration
	// ClusterName names the cluster.
	ClusterName() string
	// MaxDocSize is the largest document the node writes, in bytes.
	MaxDocSize() int64
	// Next mints from a counter: from the leader's memory when it is
	// cached, else through the log (see cluster.Node.Next).
	Next(ctx context.Context, id string, count int64, key string) (fsm.Result, error)
	// SessionExpiresIn is how long a session has left as this node sees it.
	SessionExpiresIn(s *fsm.Session) time.Duration
	// CachedValue is the last value the leader's cache handed out for a
	// cached counter read from the state, if it holds a live block.
	CachedValue(cur *fsm.Counter) (int64, bool)
	// MaxLogEntry is the largest log entry the node's log store takes; 0
	// for no limit of its own.
	MaxLogEntry() int64
	// ID is the node's ID.
	ID() string
	// NotLeader is nil on the leader, else the error that sends a request
	// on to the leader.
	NotLeader() error
	// Ready reports whether the node knows a leader and has caught up.
	Ready() (bool, string)
	// Watch starts watching key; its Changed channel is closed at the
	// next change. Close it when done.
	Watch(key fsm.Key) *cluster.Watch
	// AcquireWatch reserves a slot for a blocking query or watch.
	AcquireWatch() (release func(), err error)
	// Stopping is closed when the node begins to shut down.
	Stopping() <-chan struct{}
	// Leave takes the node out of the cluster gracefully.
	Leave(ctx context.Context) (cluster.LeaveResult, error)
	// TransferLeadership hands leadership to another voter (to, or the
	// best one when empty) and returns the new leader's ID.
	TransferLeadership(ctx context.Context, to string) (string, error)
	// RemoveMember force-removes a dead member from the Raft configuration.
	RemoveMember(id string) error
}

// DefaultMaxBody is the default request body limit.
const DefaultMaxBody = 4 << 20

// DefaultBodyTimeout is the default Config.BodyTimeout.
const DefaultBodyTimeout = 30 * time.Second

// DefaultMaxRestore is the default limit on a backup uploaded to
// POST /v1/snapshot.
const DefaultMaxRestore = 256 << 20

// Config tunes the server.
type Config struct {
	// MaxBody is the largest request body accepted; larger gets 413.
	MaxBody int64
	// MaxRestore is the largest backup POST /v1/snapshot accepts (MaxBody
	// does not apply there: a backup holds the whole state); larger gets
	// 413.
	MaxRestore int64
	// MaxBatch is the most items one POST /v1/items may carry; more gets 413.
	MaxBatch int
	// OnLeave is called after POST /v1/cluster/leave has answered, so the
	// process can stop (countd exits 0); nil does nothing.
	OnLeave func()
	Logger  *slog.Logger
	// Metrics is the registry GET /metrics serves; the server adds its
	// HTTP request metrics to it (sharing them with any other server on
	// the same registry). The caller registers everything else, the node's
	// Collector included. Nil: the server makes its own registry with the
	// HTTP metrics and, when the node has a Collector() method as
	// *cluster.Node does, the node's metrics.
	Metrics *prometheus.Registry
	// BodyTimeout bounds how long a request's body may take to arrive
	// (default DefaultBodyTimeout); a slower one gets 408 and its
	// connection is closed, so a client trickling bytes cannot hold a
	// connection and a buffer for good.
	BodyTimeout time.Duration
	// ForwardWrites makes a follower proxy writes and linearizable reads
	// to the leader and return its answer, instead of redirecting with a
	// 307 (see forward.go). Input is still validated here first.
	ForwardWrites bool
	// AllowedOrigins are web origins ("https://console.example") whose
	// pages may send state-changing requests; any other Origin is refused
	// (browser.go). This node's own origin is always allowed.
	AllowedOrigins []string
	// ACL turns token enforcement on (every node of a cluster alike):
	// every request but /healthz, /readyz and the one-time bootstrap must
	// present a token with the permission its route needs (acl.go).
	ACL bool
	// PeerTLS is set when the cluster serves HTTPS: TLS is configured on
	// every node or none, so advertised URLs, Location and X-Countd-Leader
	// then say https://, and this is the client configuration the node
	// forwards requests to the leader with (the CA to trust, and the
	// node's certificate for a leader that verifies incoming clients).
	PeerTLS *tls.Config
}

// Server is countd's HTTP API.
type Server struct {
	node   Node
	cfg    Config
	logger *slog.Logger
	echo   *echo.Echo

	closing   chan struct{} // closed by CloseStreams
	closeOnce sync.Once

	forwarder *http.Client // proxies to the leader (ForwardWrites, HeaderForward)
	// perms is every route's permission, by "METHOD path" (routes.go).
	perms  map[string]perm
	nodeID string // sent in HeaderForwardedBy
	// restoring holds a token while a backup restore runs (one at a time).
	restoring chan struct{}
}

// orDefault is a limit, or its default when unset (zero or negative).
func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// New builds the API for node. It panics if cfg.Metrics already holds
// different metrics under the HTTP metrics' names, a programming error.
func New(node Node, cfg Config) *Server {
	cfg.MaxBody = orDefault(cfg.MaxBody, DefaultMaxBody)
	cfg.MaxRestore = orDefault(cfg.MaxRestore, DefaultMaxRestore)
	cfg.MaxBatch = orDefault(cfg.MaxBatch, DefaultMaxBatch)
	cfg.BodyTimeout = orDefault(cfg.BodyTimeout, DefaultBodyTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{node: node, cfg: cfg, logger: cfg.Logger.With("component", "http"), closing: make(chan struct{}),
		restoring: make(chan struct{}, 1)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	reg, err := metricsRegistry(node, cfg)
	if err != nil {
		panic(fmt.Sprintf("httpapi: register the node's metrics: %v", err))
	}
	hm, err := newHTTPMetrics(reg)
	if err != nil {
		panic(fmt.Sprintf("httpapi: register the HTTP metrics: %v", err))
	}
	// Metrics first, so it sees the final status of everything below,
	// 413s from limitBody included.
	// Tokens are checked before any body is read, and before a follower
	// redirects or forwards.
	e.Use(hm.middleware, s.commonHeaders, s.guardBrowsers, s.authorize, s.limitBody)
	// Any request may ask to be forwarded (HeaderForward), so the
	// forwarder is always there; bodies are buffered only for requests
	// that may be.
	s.forwarder, s.nodeID = newForwardClient(cfg.PeerTLS), node.Status().NodeID
	e.Use(s.bufferBody)

	s.perms = map[string]perm{}
	for _, rt := range s.routes(reg) {
		e.Add(rt.method, rt.path, rt.handler)
		s.perms[rt.method+" "+rt.path] = rt.perm
	}
	hm.route = func(c echo.Context) bool {
		_, ok := s.perms[c.Request().Method+" "+c.Path()]
		return ok
	}

	s.echo = e
	return s
}

// baseURL is the base URL of the node serving HTTP at hostport.
func (s *Server) baseURL(hostport string) string {
	if s.cfg.PeerTLS != nil {
		return "https://" + hostport
	}
	return "http://" + hostport
}

// CloseStreams ends every blocking query and watch stream, so that
// http.Server.Shutdown does not wait for them: register it with
// RegisterOnShutdown. A blocking query answers with the current state; a
// watch stream ends and its client reconnects elsewhere.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.closing) }) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func (s *Server) commonHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(api.HeaderCluster, s.node.ClusterName())
		return next(c)
	}
}

// limitBody refuses oversized bodies before any handler runs, including
// handlers that never read the body: a declared length is checked at once,
// and a body of unknown length (chunked) is read up to the limit first.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength != 0 {
			// The body must arrive within BodyTimeout; net/http sets the
			// next request's deadlines itself.
			_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
		}
		limit := s.bodyLimit(c)
		switch {
		case r.ContentLength > limit:
			return errTooLarge(limit)
		case r.ContentLength < 0:
			body, err := readBody(http.MaxBytesReader(c.Response(), r.Body, limit), limit)
			if err != nil {
				return err
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		default:
			r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
		}
		return next(c)
	}
}

// bodyLimit is the body limit of the route c matched: MaxBody, except
// where a route carries more than one object (a backup), and for a
// document, which may not be larger than the node's -max-doc-size.
func (s *Server) bodyLimit(c echo.Context) int64 {
	switch m := c.Request().Method; {
	case m == http.MethodPost && c.Path() == snapshotPath:
		// A restore is one log entry: it must fit the log store's.
		if max := s.node.MaxLogEntry(); max > 0 {
			return min(s.cfg.MaxRestore, max-restoreEntryRoom)
		}
		return s.cfg.MaxRestore
	case (m == http.MethodPut || m == http.MethodPatch) && c.Path() == docPath:
		return min(s.cfg.MaxBody, s.node.MaxDocSize())
	}
	return s.cfg.MaxBody
}

func setIndex(c echo.Context, index uint64) {
	c.Response().Header().Set(api.HeaderIndex, strconv.FormatUint(index, 10))
}

// consistency parses ?consistency=. Stale reads also report how stale they
// may be.
func (s *Server) consistency(c echo.Context) (cluster.Consistency, error) {
	switch v := c.QueryParam("consistency"); v {
	case "", "linearizable", "default":
		return cluster.Linearizable, nil
	case "stale":
		lc := s.node.LastContact()
		ms := int64(-1)
		if lc >= 0 {
			ms = lc.Milliseconds()
		}
		c.Response().Header().Set(api.HeaderLastContact, strconv.FormatInt(ms, 10))
		return cluster.Stale, nil
	default:
		return 0, badRequest("consistency must be \"stale\" or \"linearizable\", got %q", v)
	}
}

// read runs a read at the requested consistency: validation has already
// happened, so a follower answers bad input itself and redirects the rest.
func (s *Server) read(c echo.Context) error {
	cons, err := s.consistency(c)
	if err != nil {
		return err
	}
	return s.node.ReadBarrier(c.Request().Context(), cons)
}

// apply replicates cmd, carrying the request's Idempotency-Key, and marks
// the response with the write's index and whether it was a replay. A rule
// refusal decided by the log comes back as the error.
//
// Who checks what: this layer checks what only HTTP has (path escaping,
// query parameters, JSON shape, body and batch limits) and the names it
// reads from the path. The command's own input rules (fsm's Validate) run
// once before the log, in Node.Apply, on whichever node gets the request,
// so a follower answers bad input with 400 itself instead of redirecting
// it. The state machine checks them again when it applies an entry on
// each replica, and alone decides the rules that depend on state.
func (s *Server) apply(c echo.Context, p fsm.Payload) (fsm.Result, error) {
	return s.write(c, func(ctx context.Context, key string) (fsm.Result, error) {
		return s.node.Apply(ctx, fsm.Command{Payload: p, IdempotencyKey: key})
	})
}

// write runs a write with the request's Idempotency-Key and sets the
// headers every write answers with.
func (s *Server) write(c echo.Context, do func(ctx context.Context, key string) (fsm.Result, error)) (fsm.Result, error) {
	key, err := idempotencyKey(c.Request())
	if err != nil {
		return fsm.Result{}, err
	}
	res, err := do(c.Request().Context(), key)
	if err != nil {
		return res, err
	}
	setIndex(c, res.Index)
	if res.Replayed {
		c.Response().Header().Set(api.HeaderReplayed, "true")
	}
	return res, res.Err
}

// idempotencyKey reads the Idempotency-Key header. Absent is no key; sent
// empty, or more than once, it is a mistake a retry would repeat, so it
// is refused rather than taken as no key or as one of the two.
func idempotencyKey(r *http.Request) (string, error) {
	vals := r.Header.Values(api.HeaderIdempotencyKey)
	switch {
	case len(vals) == 0:
		return "", nil
	case len(vals) > 1:
		return "", badRequest("send one %s header, not %d", api.HeaderIdempotencyKey, len(vals))
	case vals[0] == "":
		return "", badRequest("the %s header is empty; send a key, or no header", api.HeaderIdempotencyKey)
	}
	return vals[0], nil
}

// reply renders a write's result, as s.apply returns it, with view.
func reply[T, V any](c echo.Context, view func(*T) V) func(fsm.Result, error) error {
	return func(res fsm.Result, err error) error {
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, view(res.Value.(*T)))
	}
}

// remove applies a delete, which answers 204 No Content.
func (s *Server) remove(c echo.Context, p fsm.Payload) error {
	if _, err := s.apply(c, p); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// named reads the object name from the path and then the JSON body into
// req, in that order, so a bad name is reported before a bad body.
func named(c echo.Context, name func(echo.Context) (string, error), req any) (string, error) {
	id, err := name(c)
	if err != nil {
		return "", err
	}
	return id, decodeJSON(c, req)
}

// readNamed starts a read of the object named in the path: the name is
// checked first, so a follower answers a bad one itself, then the read
// waits for the consistency it asked for.
func (s *Server) readNamed(c echo.Context, name func(echo.Context) (string, error)) (string, error) {
	id, err := name(c)
	if err != nil {
		return "", err
	}
	return id, s.read(c)
}

// answer renders a read of the state with view, marking the index the read
// reflects, even when the read was refused.
func answer[T, V any](c echo.Context, v T, applied uint64, err error, view func(T) V) error {
	setIndex(c, applied)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, view(v))
}
