package httpapi

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/countd/countd/api"
)

// net/http answers a request it cannot parse (a malformed request line
// such as /v1/counters/%zz, a bad Host header, headers over the limit)
// before any handler runs, by writing a plain-text answer straight to the
// connection, and offers no hook to change it. Every other error of the
// API is a JSON body with a code (SPEC §2), so JSONProtocolErrors wraps the
// connections to recognise those answers, written whole in one Write with
// net/http's exact error headers (no handler of ours writes text/plain),
// and send the same status as JSON instead. Should net/http change its
// format, nothing matches and its plain answer goes out as before
// (TestProtocolErrorsAreJSON would say so).

// netHTTPErrorHeaders are the headers net/http's pre-handler answers carry.
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// tlsHandshakeTimeout bounds the TLS handshake of a wrapped connection,
// which net/http no longer times itself (it does only for a *tls.Conn).
const tlsHandshakeTimeout = 10 * time.Second

// JSONProtocolErrors wraps ln's connections so that net/http's answers to
// requests it cannot parse are JSON error bodies like every other error.
// Wrap the listener last, after TLS: the answers are only visible above
// it. A TLS connection keeps its TLS state (Request.TLS).
func JSONProtocolErrors(ln net.Listener) net.Listener { return protoErrListener{ln} }

type protoErrListener struct{ net.Listener }

func (l protoErrListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*tls.Conn); ok {
		return &protoErrTLSConn{protoErrConn{tc}, tc}, nil
	}
	return &protoErrConn{c}, nil
}

type protoErrConn struct{ net.Conn }

func (c *protoErrConn) Write(p []byte) (int, error) {
	if answer, ok := jsonProtocolError(p); ok {
		if _, err := c.Conn.Write(answer); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// protoErrTLSConn is a wrapped TLS connection. net/http sets Request.TLS
// from ConnectionState for a connection that is not a *tls.Conn itself,
// so the handshake is completed here first.
type protoErrTLSConn struct {
	protoErrConn
	tls *tls.Conn
}

func (c *protoErrTLSConn) ConnectionState() tls.ConnectionState {
	if !c.tls.ConnectionState().HandshakeComplete {
		_ = c.tls.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
		// A failed handshake fails the first read too, which ends the
		// connection; nothing is served on it.
		_ = c.tls.Handshake()
		_ = c.tls.SetDeadline(time.Time{})
	}
	return c.tls.ConnectionState()
}

// jsonProtocolError rewrites one of net/http's pre-handler answers, given
// whole, as a JSON error with the same status; ok is false for anything
// else.
func jsonProtocolError(p []byte) (answer []byte, ok bool) {
	rest, found := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !found {
		return nil, false
	}
	statusLine, text, found := bytes.Cut(rest, []byte(netHTTPErrorHeaders))
	if !found || len(statusLine) < 3 || bytes.ContainsAny(text, "\r\n") {
		return nil, false
	}
	status, err := strconv.Atoi(string(statusLine[:3]))
	if err != nil || status < 400 || status > 599 {
		return nil, false
	}
	// net/http's text is its status line again, with a detail after a
	// colon for some errors ("400 Bad Request: missing required Host
	// header"); only the detail says anything more.
	detail := ""
	if _, d, found := strings.Cut(string(text), ": "); found {
		detail = " (" + d + ")"
	}
	body := api.Error{Code: api.CodeBadRequest, Error: "the request could not be parsed" + detail +
		"; check the request line and headers: a path must be percent-encoded correctly (%XX with two hex digits)"}
	switch {
	case status == 431:
		body = api.Error{Code: api.CodeTooLarge, Error: "the request's headers are larger than this node accepts"}
	case status >= 500:
		body = api.Error{Code: api.CodeBadRequest, Error: "the request could not be served (" + string(text) + ")"}
	case strings.Contains(detail, "Host"):
		body.Error = "the request could not be parsed" + detail + "; send one valid Host header"
	}
	js, err := json.Marshal(body)
	if err != nil {
		return nil, false
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 ")
	// The status line without net/http's detail, which is in the body.
	if i := bytes.IndexByte(statusLine, ':'); i > 0 {
		statusLine = statusLine[:i]
	}
	b.Write(statusLine)
	b.WriteString("\r\nContent-Type: application/json\r\nContent-Length: ")
	b.WriteString(strconv.Itoa(len(js) + 1))
	b.WriteString("\r\nConnection: close\r\n\r\n")
	b.Write(js)
	b.WriteByte('\n')
	return b.Bytes(), true
}
