package httpapi

// Forwarding (-forward-writes): a follower proxies a write or linearizable
// read to the leader instead of answering 307, for clients that cannot
// follow redirects. The request still runs through its handler first, so a
// follower answers bad input (400, 413) itself exactly as without
// forwarding; only the point where the 307 would be rendered changes. The
// leader's answer is copied verbatim: status, headers (X-Countd-Index,
// Idempotent-Replayed, ETag, …) and body.

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
)

// HeaderForwardedBy marks a request one node forwarded to another, with the
// forwarding node's ID. A node never forwards such a request again: it
// answers 307 as usual and the forwarding node follows that itself, so a
// request cannot circle between nodes that disagree about the leader.
const HeaderForwardedBy = "X-Countd-Forwarded-By"

const (
	// maxForwardHops is how many nodes a forwarding node tries in turn when
	// each answers 307 (leadership moving during the request) before it
	// gives up and returns the last 307 to the client.
	maxForwardHops = 3
	// forwardTimeout bounds a forwarded request that is not a blocking
	// query. The leader answers a write within its own apply timeout, or
	// steps down and says so; this only stops a follower waiting forever
	// on a leader that accepted the connection and then went silent.
	forwardTimeout = 30 * time.Second
)

// bodyKey is where bufferBody keeps the request body in the echo context.
const bodyKey = "countd.forward.body"

// hopHeaders are the hop-by-hop headers (RFC 9110 §7.6.1): they describe
// one connection and are never copied from one to another.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade"}

// newForwardClient is the HTTP client a server forwards with, shared by all
// its requests. It has no overall timeout: each request is bounded by its
// own context (see forwardContext), because a forwarded blocking query may
// legitimately wait minutes.
func newForwardClient(peerTLS *tls.Config) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: peerTLS,
			Proxy:           nil, // the leader is a cluster peer; never go through an environment proxy
			DialContext: (&net.Dialer{
				// An unreachable leader should turn into a quick 503 that
				// the client retries, not a long hang.
				Timeout:   2 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			// Every forwarded request goes to the one leader: keep enough
			// idle connections to it that concurrent writes reuse them.
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     90 * time.Second,
		},
		// A 307 from the node we forwarded to is handled by forward itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// bufferBody reads the request body (already bounded by limitBody) into
// memory so that forward can send it again after the handler consumed it.
func (s *Server) bufferBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if !s.mayForward(r) {
			return next(c)
		}
		body, err := readBody(r.Body, s.bodyLimit(c))
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		c.Set(bodyKey, body)
		return next(c)
	}
}

// HeaderForward, sent as "1", asks a follower to proxy the request to the
// leader rather than redirect it, on a node without -forward-writes too:
// a client that cannot follow a redirect to another origin (a browser
// page, such as the web console, on one node) needs that.
const HeaderForward = "X-Countd-Forward"

// mayForward reports whether the request is proxied, not redirected, if a
// follower cannot serve it.
func (s *Server) mayForward(r *http.Request) bool {
	return s.cfg.ForwardWrites || r.Header.Get(HeaderForward) == "1"
}

// shouldForward reports whether a request a follower would redirect is
// proxied instead: forwarding is on, or asked for, and no other node
// forwarded it here.
func (s *Server) shouldForward(c echo.Context) bool {
	return s.mayForward(c.Request()) && c.Request().Header.Get(HeaderForwardedBy) == ""
}

// forwardError is a forwarded request that got no answer from the leader.
type forwardError struct {
	leader string
	// sent is false when the request provably never reached the leader
	// (no connection, or it failed before the request was written).
	sent bool
	err  error
}

func (e *forwardError) Error() string {
	return fmt.Sprintf("forward to the leader at %s: %v", e.leader, e.err)
}

func (e *forwardError) Unwrap() error { return e.err }

// forward sends the original request to leader (a base URL), following the
// 307s of nodes that are no longer the leader up to maxForwardHops, and
// copies the last answer to the client.
func (s *Server) forward(c echo.Context, leader string) {
	r := c.Request()
	body, _ := c.Get(bodyKey).([]byte)
	ctx, cancel := s.forwardContext(r)
	defer cancel()
	var resp *http.Response
	for hop := 1; ; hop++ {
		var err error
		resp, err = s.forwardOnce(ctx, r, leader, body)
		if err != nil {
			s.handleError(err, c)
			return
		}
		next := resp.Header.Get(api.HeaderLeader)
		if resp.StatusCode != http.StatusTemporaryRedirect || next == "" || hop == maxForwardHops {
			break
		}
		// That node is no longer the leader: it redirected without acting,
		// so trying the leader it names is safe.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		leader = next
	}
	defer resp.Body.Close()

	h := c.Response().Header()
	for k := range h {
		delete(h, k) // headers this node set (X-Countd-Cluster, …); the leader sends its own
	}
	for k, v := range resp.Header {
		h[k] = v
	}
	removeHopHeaders(h)
	c.Response().WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(c.Response(), resp.Body); err != nil {
		s.logger.Debug("copy the leader's answer", "leader", leader, "error", err)
	}
}

// forwardOnce sends one copy of r to the node at base. Its error, if any,
// is a *forwardError.
func (s *Server) forwardOnce(ctx context.Context, r *http.Request, base string, body []byte) (*http.Response, error) {
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), r.Method,
		base+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, &forwardError{leader: base, err: err}
	}
	req.Header = r.Header.Clone()
	removeHopHeaders(req.Header)
	// This node judged the page's origin against itself (guardBrowsers)
	// before forwarding; the leader, another origin, would refuse a page
	// this node serves. The token still goes along and is checked there.
	req.Header.Del("Origin")
	req.Header.Set(HeaderForwardedBy, s.nodeID)
	resp, err := s.forwarder.Do(req)
	if err != nil {
		return nil, &forwardError{leader: base, sent: wrote.Load(), err: err}
	}
	return resp, nil
}

// forwardContext bounds a forwarded request: by the client's request (a
// client that gives up cancels it), by CloseStreams (shutdown), and, unless
// it is a blocking query that waits by design, by forwardTimeout.
func (s *Server) forwardContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	cancelTimeout := context.CancelFunc(func() {})
	if !r.URL.Query().Has("index") {
		ctx, cancelTimeout = context.WithTimeout(ctx, forwardTimeout)
	}
	stop := make(chan struct{})
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-stop:
		}
	}()
	return ctx, func() { close(stop); cancelTimeout(); cancel() }
}

// removeHopHeaders deletes the hop-by-hop headers, including any that the
// Connection header names.
func removeHopHeaders(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// forwardErrorBody renders a forwarded request that got no answer. A
// request that provably never reached the leader is safe to retry anywhere.
// One that may have reached it is indeterminate, like raft's
// ErrLeadershipLost (ARCHITECTURE "Results that are unknown"): the leader
// may have appended and even applied the write before the connection
// failed, so it must never be reported as failed or as not sent. Both are
// 503 no_leader, which clients retry; the sentence says which case it was,
// and the Idempotency-Key that countctl and the Go client attach makes the
// retry of an unknown write apply it at most once.
func forwardErrorBody(e *forwardError) api.Error {
	if !e.sent {
		return api.Error{
			Error: fmt.Sprintf("could not reach the leader at %s (%v); the request was not sent, so retrying is safe", e.leader, e.err),
			Code:  api.CodeNoLeader,
		}
	}
	return api.Error{
		Error: fmt.Sprintf("the leader at %s did not answer (%v); a write may or may not have been applied, so retry with the same Idempotency-Key", e.leader, e.err),
		Code:  api.CodeNoLeader,
	}
}
