// Package client is the Go client for countd's HTTP API: typed calls that
// follow the cluster's 307 redirects to the leader, retry 503s and
// connection failures on other nodes with backoff until the context ends,
// learn the cluster's nodes from /v1/cluster (before the first request, or
// with Config.DiscoverOnFailover only once a request must move to another
// node), and attach an Idempotency-Key to every write so a retry after an
// unknown outcome never applies twice.
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/internal/retry"
)

// Defaults for Config.
const (
	DefaultAttemptTimeout = time.Second
	DefaultMaxBackoff     = 200 * time.Millisecond
	// DefaultWatchIdleTimeout must exceed the interval of the server's
	// keepalive comments on a document watch.
	DefaultWatchIdleTimeout = 45 * time.Second
	maxRedirects            = 5
)

// Config configures a Client.
type Config struct {
	// Addrs are node base URLs ("http://host:port" or "https://host:port";
	// "host:port" is taken as http, or as https when TLS is set).
	Addrs []string
	// Token is an ACL token's secret, sent as "Authorization: Bearer". It
	// goes only to members of the cluster: the nodes in Addrs or learned
	// from /v1/cluster, or, with TLS and its own RootCAs, any node whose
	// certificate that CA signed (a redirect to anywhere else fails rather
	// than hand the token over).
	Token string
	// TLS configures HTTPS: RootCAs is the cluster's CA, and a client
	// certificate goes in Certificates or GetClientCertificate for a
	// cluster that verifies incoming clients. Ignored when HTTPClient is
	// set (configure its transport instead).
	TLS *tls.Config
	// HTTPClient is used for requests. Its redirect policy is overridden:
	// the client follows redirects itself, with the same headers and body.
	HTTPClient *http.Client
	// AttemptTimeout bounds one HTTP attempt, so a request to a dead,
	// paused or deposed node fails fast and moves on instead of using up
	// the caller's whole deadline.
	AttemptTimeout time.Duration
	// MaxBackoff caps the wait between retries.
	MaxBackoff time.Duration
	// WatchIdleTimeout is how long a document watch waits for any byte
	// (an event or a keepalive comment) before it takes the connection
	// for dead and resumes on another node. It must exceed the server's
	// keepalive interval; a smaller value only causes needless reconnects.
	WatchIdleTimeout time.Duration
	// OnRetry, if set, is told about each retry (for diagnostics).
	OnRetry func(RetryInfo)
	// DiscoverOnFailover makes the client learn the cluster's other nodes
	// (GET /v1/cluster) only once a request has to move off a node,
	// instead of before its first request. Set it for a short-lived
	// client, such as one countctl command, whose request then reaches the
	// cluster alone unless a node fails. Leave it off for a long-lived
	// client: it must learn the other nodes while the ones it was given
	// still answer, or losing those would leave it nowhere to go.
	DiscoverOnFailover bool
}

// RetryInfo describes one failed attempt that will be retried.
type RetryInfo struct {
	Attempt int
	Node    string
	Err     error
}

// Client talks to a countd cluster. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client

	mu         sync.Mutex
	nodes      []string // known base URLs, in the order to try them
	next       int      // rotation position in nodes
	leader     string   // last leader learned from a redirect or success
	cluster    string   // cluster name from X-Countd-Cluster
	discovered time.Time
}

// New returns a client for the nodes in cfg.Addrs.
func New(cfg Config) (*Client, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("client: no node addresses")
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.WatchIdleTimeout <= 0 {
		cfg.WatchIdleTimeout = DefaultWatchIdleTimeout
	}
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		*hc = *cfg.HTTPClient
	} else {
		t := DefaultTransport()
		t.TLSClientConfig = cfg.TLS
		hc.Transport = t
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{cfg: cfg, http: hc}
	for _, a := range cfg.Addrs {
		u, err := normalize(a, c.scheme())
		if err != nil {
			return nil, err
		}
		c.addNode(u)
	}
	return c, nil
}

// DefaultTransport is an HTTP transport suited to a few nodes on a LAN:
// keep-alive with many idle connections per node and a short dial timeout.
func DefaultTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
	}
}

// scheme is the one a bare host:port is reached with.
func (c *Client) scheme() string {
	if c.cfg.TLS != nil {
		return "https"
	}
	return "http"
}

func normalize(addr, scheme string) (string, error) {
	addr = strings.TrimSpace(addr)
	if !strings.Contains(addr, "://") {
		addr = scheme + "://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("client: bad node address %q: want http://host:port or https://host:port", addr)
	}
	// Anything else in the address would be silently dropped (a path, a
	// query) or could never connect (a port out of range): refuse it now
	// rather than retry it until a deadline.
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("client: node address %q must be only scheme://host:port, without a path, query or user", addr)
	}
	if strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("client: node address %q has an empty port", addr)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("client: node address %q has port %s; a port is 1 to 65535", addr, p)
		}
	}
	return u.Scheme + "://" + u.Host, nil
}

func (c *Client) addNode(base string) {
	for _, n := range c.nodes {
		if n == base {
			return
		}
	}
	c.nodes = append(c.nodes, base)
}

// ClusterName is the cluster name the last response reported ("" before any).
func (c *Client) ClusterName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cluster
}

// Nodes returns the node base URLs the client knows.
func (c *Client) Nodes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.nodes...)
}

// Error is an error response from countd.
type Error struct {
	Status  int
	Code    api.Code
	Message string
	// Current is the counter's state on a conflict.
	Current *api.Counter
}

func (e *Error) Error() string { return e.Message }

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code api.Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// CallOption adjusts one call.
type CallOption func(*callOpts)

type callOpts struct {
	key   string
	stale bool
	// ifMatch and ifNoneMatch are document preconditions, already in
	// header form ("\"3\"" or "*").
	ifMatch     string
	ifNoneMatch string
	// session makes a join ephemeral.
	session string
}

// InSession makes a Join ephemeral: the member leaves the queue when the
// session ends (SPEC §9).
func InSession(id string) CallOption { return func(o *callOpts) { o.session = id } }

// WithIdempotencyKey makes a write use key instead of a fresh random one.
// Reuse the key when repeating a write whose outcome is unknown.
func WithIdempotencyKey(key string) CallOption { return func(o *callOpts) { o.key = key } }

// Stale makes a read accept a possibly stale answer from any node.
func Stale() CallOption { return func(o *callOpts) { o.stale = true } }

// NewIdempotencyKey returns a random key.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

type request struct {
	method string
	path   string // with query
	body   []byte // sent as is; the caller marshals JSON or passes raw bytes
	write  bool
	key    string
	// contentType overrides application/json for a body (merge patches).
	contentType string
	// header holds extra request headers (If-Match, If-None-Match).
	header http.Header
	// timeout overrides Config.AttemptTimeout for each attempt: a blocking
	// read legitimately takes as long as its wait.
	timeout time.Duration
	// sink, when set, receives a 200 answer's body as it arrives instead
	// of the body being held in memory (a backup download).
	sink io.Writer
}

type response struct {
	status int
	header http.Header
	body   []byte
	node   string
}

// do sends req to the cluster: it starts at the known leader (or the next
// node), follows redirects, and on a 503 or a connection failure retries on
// the next node after a short backoff, until a final answer or ctx ends.
func (c *Client) do(ctx context.Context, req request) (*response, error) {
	if req.write && req.key == "" {
		req.key = NewIdempotencyKey()
	}
	if req.key != "" {
		// A key the server would refuse (or net/http cannot even send)
		// fails now; retrying could never help.
		if err := api.CheckIdempotencyKey(req.key); err != nil {
			return nil, &Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: err.Error()}
		}
	}
	c.discoverFirst(ctx)
	target := c.startNode()
	bo := retry.New(c.cfg.MaxBackoff)
	redirects := 0
	var lastErr error
	for attempt := 1; ; attempt++ {
		resp, err := c.attempt(ctx, target, req)
		again := false
		var se sinkError
		switch {
		case errors.As(err, &se):
			// Part of the answer is already with the caller: another
			// attempt would write it twice.
			return nil, se.err
		case err != nil:
			if ctx.Err() != nil {
				return nil, c.finalError(ctx, lastErr, err)
			}
			lastErr = fmt.Errorf("%s: %w", target, err)
			c.forgetLeader(target)
			target = c.rotate(target)
			again = true
		case errors.Is(err, errNotMember):
			return nil, err
		case resp.status == http.StatusTemporaryRedirect || resp.status == http.StatusPermanentRedirect:
			leader := resp.header.Get(api.HeaderLeader)
			if leader == "" {
				if loc, err := url.Parse(resp.header.Get("Location")); err == nil && loc.Host != "" {
					leader = loc.Scheme + "://" + loc.Host
				}
			}
			lastErr = fmt.Errorf("%s: redirected to %s", target, leader)
			redirects++
			if leader == "" || redirects > maxRedirects {
				// Nodes disagree about the leader (an election just ended);
				// back off and ask again.
				redirects = 0
				target = c.rotate(target)
				again = true
				break
			}
			if c.cfg.Token != "" && !c.trusted(leader) {
				// A redirect to a stranger: ask the cluster who its
				// members are before handing the token to anyone.
				c.maybeDiscover(ctx, true)
				if !c.trusted(leader) {
					return nil, fmt.Errorf("%s redirected to %s: %w", target, leader, errNotMember)
				}
			}
			c.setLeader(leader)
			target = leader
			continue
		case resp.status == http.StatusServiceUnavailable:
			lastErr = fmt.Errorf("%s: %s", target, errorFrom(resp))
			c.forgetLeader(target)
			target = c.rotate(target)
			again = true
		default:
			if req.write && resp.status < 500 {
				// The node that answered a write is the leader: go straight
				// there next time.
				c.setLeader(target)
			}
			return resp, nil
		}
		if again {
			redirects = 0
			if err := c.pause(ctx, bo, attempt, target, lastErr); err != nil {
				return nil, c.finalError(ctx, lastErr, err)
			}
		}
	}
}

func (c *Client) finalError(ctx context.Context, last, cause error) error {
	if last == nil {
		last = cause
	}
	return fmt.Errorf("gave up after %w: %w", ctx.Err(), last)
}

// pause is what every retry loop of the client does between attempts: it
// tells OnRetry, learns the cluster's nodes if it has not yet (or again,
// after a whole round of failures), and backs off.
func (c *Client) pause(ctx context.Context, bo *retry.Backoff, attempt int, next string, err error) error {
	if c.cfg.OnRetry != nil {
		c.cfg.OnRetry(RetryInfo{Attempt: attempt, Node: next, Err: err})
	}
	c.maybeDiscover(ctx, attempt%len(c.Nodes()) == 0)
	return bo.Wait(ctx)
}

func (c *Client) attempt(ctx context.Context, base string, req request) (*response, error) {
	timeout := c.cfg.AttemptTimeout
	if req.timeout > 0 {
		timeout = req.timeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(actx, req.method, base+req.path, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range req.header {
		hr.Header[k] = append([]string(nil), vs...)
	}
	if req.body != nil {
		ct := req.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if req.key != "" {
		hr.Header.Set(api.HeaderIdempotencyKey, req.key)
	}
	if err := c.authorize(hr, base); err != nil {
		return nil, err
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if name := resp.Header.Get(api.HeaderCluster); name != "" {
		c.mu.Lock()
		c.cluster = name
		c.mu.Unlock()
	}
	out := &response{status: resp.StatusCode, header: resp.Header, node: base}
	if req.sink != nil && resp.StatusCode == http.StatusOK {
		if _, err := io.Copy(req.sink, resp.Body); err != nil {
			return nil, sinkError{fmt.Errorf("%s: receive the answer: %w", base, err)}
		}
		return out, nil
	}
	if out.body, err = io.ReadAll(resp.Body); err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	return out, nil
}

// errNotMember refuses to send the token to a node the client cannot tell
// is part of the cluster.
var errNotMember = errors.New("not sending the token to a node that is not a known member of the cluster (give its address, or use TLS with the cluster's CA)")

// authorize adds the token to a request for base, if base may have it.
func (c *Client) authorize(hr *http.Request, base string) error {
	if c.cfg.Token == "" {
		return nil
	}
	if !c.trusted(base) {
		return fmt.Errorf("%w: %s", errNotMember, base)
	}
	hr.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	return nil
}

// trusted reports whether the token may go to base: a known node, or any
// node over TLS verified against the CA this client was given (only
// cluster nodes hold certificates the CA signed for serving).
func (c *Client) trusted(base string) bool {
	if strings.HasPrefix(base, "https://") && c.cfg.TLS != nil && c.cfg.TLS.RootCAs != nil && c.cfg.HTTPClient == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.nodes, base)
}

// sinkError is a failure after part of a streamed answer reached its sink:
// final, because a retry would write the start again.
type sinkError struct{ err error }

func (e sinkError) Error() string { return e.err.Error() }

func (c *Client) startNode() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader != "" {
		return c.leader
	}
	return c.nodes[c.next%len(c.nodes)]
}

// rotate returns the next node after failed.
func (c *Client) rotate(failed string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if n == failed {
			c.next = i + 1
			break
		}
	}
	if c.next >= len(c.nodes) {
		c.next = 0
	}
	return c.nodes[c.next]
}

func (c *Client) setLeader(base string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = base
	c.addNode(base)
}

func (c *Client) forgetLeader(base string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader == base {
		c.leader = ""
	}
}

// discoverFirst learns the cluster's nodes before a request or watch
// starts, unless Config.DiscoverOnFailover leaves that to the first retry.
func (c *Client) discoverFirst(ctx context.Context) {
	if !c.cfg.DiscoverOnFailover {
		c.maybeDiscover(ctx, false)
	}
}

// maybeDiscover learns the cluster's nodes from /v1/cluster: the first time
// it is called, and again after a round of failures (force) at most every
// second.
func (c *Client) maybeDiscover(ctx context.Context, force bool) {
	c.mu.Lock()
	due := c.discovered.IsZero() || (force && time.Since(c.discovered) > time.Second)
	if due {
		c.discovered = time.Now()
	}
	nodes := append([]string(nil), c.nodes...)
	c.mu.Unlock()
	if !due {
		return
	}
	for _, n := range nodes {
		dctx, cancel := context.WithTimeout(ctx, min(c.cfg.AttemptTimeout, 500*time.Millisecond))
		resp, err := c.attempt(dctx, n, request{method: http.MethodGet, path: "/v1/cluster"})
		cancel()
		if err != nil || resp.status != http.StatusOK {
			continue
		}
		var st api.Cluster
		if json.Unmarshal(resp.body, &st) != nil {
			continue
		}
		c.mu.Lock()
		for _, m := range st.Members {
			if m.HTTPAddr != "" {
				c.addNode(c.scheme() + "://" + m.HTTPAddr)
			}
		}
		c.mu.Unlock()
		return
	}
}

// errorFrom decodes an error response body.
func errorFrom(resp *response) *Error {
	var body api.Error
	if err := json.Unmarshal(resp.body, &body); err != nil || body.Code == "" {
		msg := strings.TrimSpace(string(resp.body))
		if msg == "" {
			msg = http.StatusText(resp.status)
		}
		return &Error{Status: resp.status, Code: api.CodeInternal, Message: fmt.Sprintf("HTTP %d from %s: %s", resp.status, resp.node, msg)}
	}
	return &Error{Status: resp.status, Code: body.Code, Message: body.Error, Current: body.Current}
}

// call runs req and decodes a 2xx body into out (unless out is nil).
func (c *Client) call(ctx context.Context, req request, out any) error {
	_, err := c.callResp(ctx, req, out)
	return err
}

// callIndex is call that also returns the response's X-Countd-Index, which
// a blocking query needs to ask for the next change.
func (c *Client) callIndex(ctx context.Context, req request, out any) (uint64, error) {
	resp, err := c.callResp(ctx, req, out)
	if err != nil {
		return 0, err
	}
	raw := resp.header.Get(api.HeaderIndex)
	index, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		// Every /v1 response carries it (SPEC §6); guessing one would make
		// a blocking loop spin or stall, so say what is wrong instead.
		return 0, fmt.Errorf("response from %s has no valid %s header (%q)", resp.node, api.HeaderIndex, raw)
	}
	return index, nil
}

func (c *Client) callResp(ctx context.Context, req request, out any) (*response, error) {
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.status < 200 || resp.status > 299 {
		return nil, errorFrom(resp)
	}
	if out == nil || resp.status == http.StatusNoContent {
		return resp, nil
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return nil, fmt.Errorf("decode response from %s: %w", resp.node, err)
	}
	return resp, nil
}

func applyOpts(opts []CallOption) callOpts {
	var o callOpts
	for _, f := range opts {
		f(&o)
	}
	return o
}

func readPath(path string, o callOpts, query url.Values) string {
	if o.stale {
		if query == nil {
			query = url.Values{}
		}
		query.Set("consistency", "stale")
	}
	if len(query) > 0 {
		return path + "?" + query.Encode()
	}
	return path
}

// Cluster returns the cluster status as seen by the first node that answers.
func (c *Client) Cluster(ctx context.Context) (*api.Cluster, error) {
	var out api.Cluster
	err := c.call(ctx, request{method: http.MethodGet, path: "/v1/cluster"}, &out)
	return &out, err
}
