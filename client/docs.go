package client

// Documents: versioned JSON objects with compare-and-set writes, merge
// patches and a change stream that survives node failures.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/internal/retry"
)

func docPath(name string) string { return "/v1/docs/" + url.PathEscape(name) }

// IfMatch makes a document write conditional on the document being at
// version (If-Match: "<version>"); otherwise it fails with a
// precondition_failed *Error and changes nothing.
func IfMatch(version uint64) CallOption {
	return func(o *callOpts) { o.ifMatch = `"` + strconv.FormatUint(version, 10) + `"` }
}

// IfExists makes a document write conditional on the document existing
// (If-Match: *).
func IfExists() CallOption { return func(o *callOpts) { o.ifMatch = "*" } }

// IfAbsent makes a document PUT conditional on the document not existing
// (If-None-Match: *): create, never replace.
func IfAbsent() CallOption { return func(o *callOpts) { o.ifNoneMatch = "*" } }

// preconditions renders the document preconditions as request headers.
func (o callOpts) preconditions() http.Header {
	h := http.Header{}
	if o.ifMatch != "" {
		h.Set("If-Match", o.ifMatch)
	}
	if o.ifNoneMatch != "" {
		h.Set("If-None-Match", o.ifNoneMatch)
	}
	return h
}

// Doc reads a document (linearizable unless Stale() is given). An absent
// document is a not_found *Error.
func (c *Client) Doc(ctx context.Context, name string, opts ...CallOption) (*api.Document, error) {
	var out api.Document
	err := c.call(ctx, request{method: http.MethodGet, path: readPath(docPath(name), applyOpts(opts), nil)}, &out)
	return &out, err
}

// PutDoc replaces a document with value, which must be a JSON object, and
// returns the new version. IfMatch, IfExists and IfAbsent make it
// conditional.
func (c *Client) PutDoc(ctx context.Context, name string, value json.RawMessage, opts ...CallOption) (*api.Document, error) {
	o := applyOpts(opts)
	var out api.Document
	err := c.call(ctx, request{method: http.MethodPut, path: docPath(name), body: value, header: o.preconditions(), write: true, key: o.key}, &out)
	return &out, err
}

// PatchDoc applies an RFC 7386 JSON merge patch (a null member removes the
// key) and returns the new version; an absent document is created from the
// patch. IfMatch and IfExists make it conditional.
func (c *Client) PatchDoc(ctx context.Context, name string, patch json.RawMessage, opts ...CallOption) (*api.Document, error) {
	o := applyOpts(opts)
	var out api.Document
	err := c.call(ctx, request{
		method: http.MethodPatch, path: docPath(name), body: patch, contentType: "application/merge-patch+json",
		header: o.preconditions(), write: true, key: o.key,
	}, &out)
	return &out, err
}

// DeleteDoc deletes a document. Deleting is a version of its own (watchers
// see every key removed) and a later write continues from it; deleting an
// absent document succeeds and changes nothing. IfMatch makes it
// conditional.
func (c *Client) DeleteDoc(ctx context.Context, name string, opts ...CallOption) error {
	o := applyOpts(opts)
	return c.call(ctx, request{method: http.MethodDelete, path: docPath(name), header: o.preconditions(), write: true, key: o.key}, nil)
}

// DocEvent is one event of a document watch: a change (one version's
// changes to top-level keys) or a reset (the whole document, sent when the
// watch starts without a version, or when the version it resumes from has
// left the server's history).
type DocEvent struct {
	// Type is api.EventChange or api.EventReset.
	Type string
	// Version is the document version after the event.
	Version uint64
	// Index is the log index of that version's write.
	Index uint64
	// Changes are a change event's key changes, sorted by key.
	Changes []api.KeyChange
	// Value is a reset event's document: a JSON object, or null when the
	// document is absent.
	Value json.RawMessage
}

// fnError carries the callback's error out of a stream unchanged.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// permanentError ends a watch: retrying could not help.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// redirectError sends the watch to the node a 307 named.
type redirectError struct{ leader string }

func (e redirectError) Error() string { return "redirected to " + e.leader }

// WatchDoc streams a document's versions to fn, in order, each exactly once,
// until ctx ends (it then returns ctx's error) or fn returns an error (which
// it returns unchanged).
//
// With since nil the first event is a reset carrying the current document;
// otherwise events start after version *since (exclusive). Any node serves
// a watch from its own state. When the connection fails, the node stops
// answering (nothing, not even a keepalive, within Config.WatchIdleTimeout),
// or the node refuses the watch with a 5xx such as too_many_watchers, the
// watch resumes on the next known node with Last-Event-ID set to the last
// version delivered, after a backoff, and keeps trying until ctx ends; the
// server answers a resume whose version it no longer holds with a reset.
// Changes at or below the last delivered version (or since) are dropped, so
// fn never sees a change twice. A reset is always delivered: the server
// sends one at or below the last version only when the document really went
// back (a forced snapshot restore) — a node that is merely behind the
// watcher first waits to catch up.
// Errors that retrying cannot fix (a 4xx such as an invalid name, or an
// event that does not decode) end the watch.
func (c *Client) WatchDoc(ctx context.Context, name string, since *uint64, fn func(DocEvent) error) error {
	w := &docWatch{c: c, name: name, fn: fn}
	if since != nil {
		w.last, w.haveLast, w.sinceQuery = *since, true, true
	}
	c.discoverFirst(ctx)
	target := c.startNode()
	bo := retry.New(c.cfg.MaxBackoff)
	for attempt := 1; ; attempt++ {
		progressed, err := w.stream(ctx, target)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fe fnError
		if errors.As(err, &fe) {
			return fe.err
		}
		var (
			ae *Error
			pe permanentError
		)
		if errors.As(err, &pe) || (errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500) {
			return fmt.Errorf("watch document %s: %w", name, err)
		}
		var re redirectError
		if errors.As(err, &re) {
			c.setLeader(re.leader)
			target = re.leader
			continue
		}
		if progressed {
			// The node served a while: a fresh failure, not a repeat.
			attempt = 1
			bo.Reset()
		}
		c.forgetLeader(target)
		target = c.rotate(target)
		if err := c.pause(ctx, bo, attempt, target, err); err != nil {
			return err
		}
	}
}

// docWatch is the state a watch carries across connections.
type docWatch struct {
	c    *Client
	name string
	fn   func(DocEvent) error
	// last is the last version delivered (or the caller's since).
	last     uint64
	haveLast bool
	// sinceQuery: the first connection carries the caller's since as
	// ?since=; resumes carry Last-Event-ID, as an SSE client does.
	sinceQuery bool
}

// stream runs one connection to base until it fails. progressed reports
// whether the node sent anything, so a flapping node is backed off from
// while one that served for a while is retried at once.
func (w *docWatch) stream(ctx context.Context, base string) (progressed bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var idle atomic.Bool
	// Until the answer's headers arrive, a node has AttemptTimeout, like
	// any request; after that it must send something within the idle
	// timeout. A timer cancels the request when either passes.
	timer := time.AfterFunc(w.c.cfg.AttemptTimeout, func() { idle.Store(true); cancel() })
	defer timer.Stop()

	path := docPath(w.name) + "/watch"
	if w.sinceQuery {
		path += "?since=" + strconv.FormatUint(w.last, 10)
	}
	hr, err := http.NewRequestWithContext(sctx, http.MethodGet, base+path, nil)
	if err != nil {
		return false, err
	}
	hr.Header.Set("Accept", "text/event-stream")
	if err := w.c.authorize(hr, base); err != nil {
		return false, permanentError{err}
	}
	if w.haveLast && !w.sinceQuery {
		hr.Header.Set("Last-Event-ID", strconv.FormatUint(w.last, 10))
	}
	resp, err := w.c.http.Do(hr)
	if err != nil {
		if idle.Load() {
			return false, fmt.Errorf("%s: no answer within %s", base, w.c.cfg.AttemptTimeout)
		}
		return false, fmt.Errorf("%s: %w", base, err)
	}
	defer resp.Body.Close()
	if name := resp.Header.Get(api.HeaderCluster); name != "" {
		w.c.mu.Lock()
		w.c.cluster = name
		w.c.mu.Unlock()
	}
	if err := w.c.checkStream(base, resp); err != nil {
		return false, err
	}
	w.sinceQuery = false
	timer.Reset(w.c.cfg.WatchIdleTimeout)
	body := &activityReader{r: resp.Body, onData: func() { timer.Reset(w.c.cfg.WatchIdleTimeout) }}
	p := newSSEReader(body)
	for {
		ev, err := p.Next()
		progressed = body.seen
		if err != nil {
			if idle.Load() {
				return progressed, fmt.Errorf("%s: nothing received for %s", base, w.c.cfg.WatchIdleTimeout)
			}
			if errors.Is(err, io.EOF) {
				return progressed, fmt.Errorf("%s: the server ended the stream", base)
			}
			return progressed, fmt.Errorf("%s: read event stream: %w", base, err)
		}
		de, ok, err := decodeDocEvent(ev)
		if err != nil {
			// A complete event that does not decode is a server bug; a
			// retry would read the same bytes again.
			return progressed, permanentError{fmt.Errorf("%s: bad %q event: %w", base, ev.Event, err)}
		}
		if !ok || (w.haveLast && de.Version <= w.last && de.Type != api.EventReset) {
			continue // an event type this client does not know, or a change already delivered
		}
		w.last, w.haveLast = de.Version, true
		if err := w.fn(de); err != nil {
			return progressed, fnError{err}
		}
	}
}

// checkStream accepts a 200 event stream and turns anything else into the
// error WatchDoc acts on.
func (c *Client) checkStream(base string, resp *http.Response) error {
	switch {
	case resp.StatusCode == http.StatusOK:
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if mt != "text/event-stream" {
			return fmt.Errorf("%s: answered a watch with %q, not an event stream", base, resp.Header.Get("Content-Type"))
		}
		return nil
	case resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect:
		// Watches are served by any node, so this should not happen; if a
		// node does redirect, go where it says.
		if leader := resp.Header.Get(api.HeaderLeader); leader != "" {
			if u, err := normalize(leader, c.scheme()); err == nil {
				return redirectError{leader: u}
			}
		}
		return fmt.Errorf("%s: redirected a watch without naming the leader", base)
	default:
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return fmt.Errorf("%s: read error response: %w", base, err)
		}
		return fmt.Errorf("%s: %w", base, errorFrom(&response{status: resp.StatusCode, header: resp.Header, body: b, node: base}))
	}
}

// decodeDocEvent decodes a change or reset; ok is false for other types.
func decodeDocEvent(ev sseEvent) (de DocEvent, ok bool, err error) {
	switch ev.Event {
	case api.EventChange:
		var ch api.DocChange
		if err := json.Unmarshal([]byte(ev.Data), &ch); err != nil {
			return de, false, err
		}
		return DocEvent{Type: api.EventChange, Version: ch.Version, Index: ch.Index, Changes: ch.Changes}, true, nil
	case api.EventReset:
		var r api.DocReset
		if err := json.Unmarshal([]byte(ev.Data), &r); err != nil {
			return de, false, err
		}
		if r.Value == nil {
			r.Value = json.RawMessage("null")
		}
		return DocEvent{Type: api.EventReset, Version: r.Version, Index: r.Index, Value: r.Value}, true, nil
	}
	return de, false, nil
}

// activityReader reports every read that returned data, which is what
// keeps a watch's idle timer from firing.
type activityReader struct {
	r      io.Reader
	onData func()
	seen   bool
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.seen = true
		a.onData()
	}
	return n, err
}
