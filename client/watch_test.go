package client_test

// WatchDoc against scripted event streams, for what real nodes do only
// rarely: a node that goes silent, refuses watchers, redirects, repeats
// versions, or sends an event that does not decode.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

// watchReq is what a fake node saw of one watch request.
type watchReq struct {
	since, lastEventID string
}

// fakeNode serves /v1/docs/d/watch with script, which gets the request's
// number on this node (from 1); /v1/cluster is a 404, so discovery learns
// nothing.
type fakeNode struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []watchReq
}

func newFakeNode(t *testing.T, script func(n int, w http.ResponseWriter, r *http.Request)) *fakeNode {
	f := &fakeNode{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/docs/d/watch" {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, watchReq{since: r.URL.Query().Get("since"), lastEventID: r.Header.Get("Last-Event-ID")})
		n := len(f.reqs)
		f.mu.Unlock()
		script(n, w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeNode) requests() []watchReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]watchReq(nil), f.reqs...)
}

// startStream answers 200 with an event stream and sends frames.
func startStream(w http.ResponseWriter, frames ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	sendFrames(w, frames...)
}

func sendFrames(w http.ResponseWriter, frames ...string) {
	for _, f := range frames {
		_, _ = fmt.Fprint(w, f)
	}
	w.(http.Flusher).Flush()
}

func change(v uint64) string {
	return fmt.Sprintf("id: %d\nevent: change\ndata: {\"version\":%d,\"index\":%d,\"changes\":[{\"type\":\"added\",\"key\":\"k%d\",\"new\":%d}]}\n\n", v, v, 100+v, v, v)
}

func reset(v uint64, value string) string {
	return fmt.Sprintf("id: %d\nevent: reset\ndata: {\"version\":%d,\"index\":%d,\"value\":%s}\n\n", v, v, 100+v, value)
}

// collector gathers events and stops the watch at version stopAt, or after
// stopAfter events when that is set.
type collector struct {
	mu        sync.Mutex
	events    []client.DocEvent
	stopAt    uint64
	stopAfter int
}

var errStop = errors.New("stop")

func (c *collector) fn(ev client.DocEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, ev)
	if c.stopAfter > 0 {
		if len(c.events) >= c.stopAfter {
			return errStop
		}
		return nil
	}
	if ev.Version >= c.stopAt {
		return errStop
	}
	return nil
}

func (c *collector) versions() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []uint64
	for _, e := range c.events {
		out = append(out, e.Version)
	}
	return out
}

func watchClient(t *testing.T, idle time.Duration, onRetry func(client.RetryInfo), nodes ...*fakeNode) *client.Client {
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.URL)
	}
	return newClient(t, client.Config{Addrs: addrs, WatchIdleTimeout: idle, OnRetry: onRetry})
}

func equalU64(a, b []uint64) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestWatchDeliversResetThatGoesBack(t *testing.T) {
	// countd sends a reset below the watcher's version only when the
	// document really went back (a forced snapshot restore): the caller
	// must see it, and the changes after it.
	n1 := newFakeNode(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		startStream(w, reset(3, `{"a":1}`), change(4))
	})
	n2 := newFakeNode(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		startStream(w, reset(2, `{"old":true}`), change(3))
		<-r.Context().Done()
	})
	c := watchClient(t, 0, nil, n1, n2)
	col := &collector{stopAfter: 4}
	if err := c.WatchDoc(ctxFor(t, 10*time.Second), "d", nil, col.fn); err != errStop {
		t.Fatalf("WatchDoc: %v", err)
	}
	if got := col.versions(); !equalU64(got, []uint64{3, 4, 2, 3}) {
		t.Fatalf("versions delivered: %v, want [3 4 2 3]", got)
	}
	if col.events[2].Type != api.EventReset || string(col.events[2].Value) != `{"old":true}` {
		t.Fatalf("third event %+v, want the reset to version 2", col.events[2])
	}
}

func TestWatchResumesOnNextNode(t *testing.T) {
	// n1 sends the reset and one change, then drops the connection (its
	// node died). n2 resends version 4 (a node that answers from an older
	// resume point) and then 5: the caller must not see a change twice.
	n1 := newFakeNode(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		startStream(w, ": keepalive\n\n", reset(3, `{"a":1}`), change(4))
	})
	n2 := newFakeNode(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Last-Event-ID"); got != "4" {
			t.Errorf("resumed with Last-Event-ID %q, want 4", got)
		}
		startStream(w, change(4), change(5))
		<-r.Context().Done()
	})
	var retries []client.RetryInfo
	var mu sync.Mutex
	c := watchClient(t, 0, func(ri client.RetryInfo) { mu.Lock(); retries = append(retries, ri); mu.Unlock() }, n1, n2)
	col := &collector{stopAt: 5}
	err := c.WatchDoc(ctxFor(t, 10*time.Second), "d", nil, col.fn)
	if !errors.Is(err, errStop) || err != errStop {
		t.Fatalf("WatchDoc must return fn's error unchanged, got %v", err)
	}
	if got := col.versions(); !equalU64(got, []uint64{3, 4, 5}) {
		t.Errorf("versions delivered: %v, want [3 4 5]", got)
	}
	ev := col.events
	if ev[0].Type != api.EventReset || string(ev[0].Value) != `{"a":1}` || ev[0].Index != 103 || ev[0].Changes != nil {
		t.Errorf("reset event: %+v", ev[0])
	}
	if ev[1].Type != api.EventChange || ev[1].Index != 104 || len(ev[1].Changes) != 1 ||
		fmt.Sprintf("%s %s %s %s", ev[1].Changes[0].Type, ev[1].Changes[0].Key, ev[1].Changes[0].Old, ev[1].Changes[0].New) != "added k4  4" || ev[1].Value != nil {
		t.Errorf("change event: %+v", ev[1])
	}
	if got := n1.requests(); len(got) != 1 || got[0] != (watchReq{}) {
		t.Errorf("n1 requests: %+v (a watch without since sends neither since nor Last-Event-ID)", got)
	}
	if got := n2.requests(); len(got) != 1 || got[0] != (watchReq{lastEventID: "4"}) {
		t.Errorf("n2 requests: %+v, want one resume with Last-Event-ID 4", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(retries) != 1 || retries[0].Node != n2.URL || !strings.Contains(retries[0].Err.Error(), "ended the stream") {
		t.Errorf("OnRetry: %+v", retries)
	}
}

func TestWatchSinceAndRefusals(t *testing.T) {
	// n1 is full; n2 redirects (watches should not, but a client must cope);
	// n3 serves from since=7.
	n1 := newFakeNode(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprint(w, `{"error":"this node has too many watchers","code":"too_many_watchers"}`)
	})
	var n3 *fakeNode
	n2 := newFakeNode(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.HeaderLeader, n3.URL)
		w.Header().Set("Location", n3.URL+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	n3 = newFakeNode(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		startStream(w, change(8))
		<-r.Context().Done()
	})
	var mu sync.Mutex
	var notes []string
	c := watchClient(t, 0, func(ri client.RetryInfo) { mu.Lock(); notes = append(notes, ri.Err.Error()); mu.Unlock() }, n1, n2, n3)
	col := &collector{stopAt: 8}
	since := uint64(7)
	if err := c.WatchDoc(ctxFor(t, 10*time.Second), "d", &since, col.fn); err != errStop {
		t.Fatalf("WatchDoc: %v", err)
	}
	if got := col.versions(); !equalU64(got, []uint64{8}) {
		t.Errorf("versions: %v", got)
	}
	for name, n := range map[string]*fakeNode{"n1": n1, "n2": n2, "n3": n3} {
		if got := n.requests(); len(got) != 1 || got[0] != (watchReq{since: "7"}) {
			t.Errorf("%s requests: %+v, want one with ?since=7 (nothing was delivered yet)", name, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notes) != 1 || !strings.Contains(notes[0], "too many watchers") {
		t.Errorf("retry notes: %q (a redirect is not a retry)", notes)
	}
}

func TestWatchSilentNodeTimesOut(t *testing.T) {
	// n1 answers, sends a keepalive and the reset, then falls silent while
	// keeping the connection open: a paused or cut-off node.
	n1 := newFakeNode(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		startStream(w, ": keepalive\n\n", reset(1, `{}`))
		<-r.Context().Done()
	})
	n2 := newFakeNode(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		startStream(w, change(2))
		<-r.Context().Done()
	})
	c := watchClient(t, 200*time.Millisecond, nil, n1, n2)
	col := &collector{stopAt: 2}
	start := time.Now()
	if err := c.WatchDoc(ctxFor(t, 10*time.Second), "d", nil, col.fn); err != errStop {
		t.Fatalf("WatchDoc: %v", err)
	}
	if el := time.Since(start); el < 200*time.Millisecond || el > 5*time.Second {
		t.Errorf("moved on after %s; want about the 200ms idle timeout", el)
	}
	if got := n2.requests(); len(got) != 1 || got[0].lastEventID != "1" {
		t.Errorf("n2 requests: %+v", got)
	}
}

func TestWatchKeepalivesKeepTheConnection(t *testing.T) {
	// Keepalives every 20ms for longer than the 200ms idle timeout, then a
	// change: the client must stay on n1 throughout.
	n1 := newFakeNode(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		startStream(w, reset(1, `{}`))
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 25; i++ {
			select {
			case <-tick.C:
				sendFrames(w, ": keepalive\n")
			case <-r.Context().Done():
				return
			}
		}
		sendFrames(w, "\n", change(2))
		<-r.Context().Done()
	})
	n2 := newFakeNode(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	c := watchClient(t, 200*time.Millisecond, nil, n1, n2)
	col := &collector{stopAt: 2}
	if err := c.WatchDoc(ctxFor(t, 10*time.Second), "d", nil, col.fn); err != errStop {
		t.Fatalf("WatchDoc: %v", err)
	}
	if len(n1.requests()) != 1 || len(n2.requests()) != 0 {
		t.Errorf("requests: n1 %d, n2 %d; want 1 and 0", len(n1.requests()), len(n2.requests()))
	}
}

func TestWatchEnds(t *testing.T) {
	t.Run("a 4xx is final", func(t *testing.T) {
		n1 := newFakeNode(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprint(w, `{"error":"document name \"d\" is bad","code":"invalid_name"}`)
		})
		c := watchClient(t, 0, nil, n1)
		err := c.WatchDoc(ctxFor(t, 10*time.Second), "d", nil, func(client.DocEvent) error { return nil })
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 400 || ce.Code != api.CodeInvalidName || len(n1.requests()) != 1 {
			t.Errorf("want one request and an invalid_name *Error, got %d and %v", len(n1.requests()), err)
		}
	})

	t.Run("an event that does not decode is final", func(t *testing.T) {
		n1 := newFakeNode(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			startStream(w, "event: change\ndata: {\"version\":\n\n")
		})
		c := watchClient(t, 0, nil, n1)
		err := c.WatchDoc(ctxFor(t, 10*time.Second), "d", nil, func(client.DocEvent) error { return nil })
		if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `bad "change" event`) || len(n1.requests()) != 1 {
			t.Errorf("want one request and a decode error, got %d and %v", len(n1.requests()), err)
		}
	})

	t.Run("the context ends it", func(t *testing.T) {
		n1 := newFakeNode(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			startStream(w, reset(0, "null"), "event: other\ndata: ignored\n\n", "data: ignored too\n\n")
			<-r.Context().Done()
		})
		c := watchClient(t, 0, nil, n1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var got []client.DocEvent
		err := c.WatchDoc(ctx, "d", nil, func(ev client.DocEvent) error {
			got = append(got, ev)
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("want context.Canceled, got %v", err)
		}
		if len(got) != 1 || got[0].Type != api.EventReset || got[0].Version != 0 || string(got[0].Value) != "null" {
			t.Errorf("events: %+v", got)
		}
	})

	t.Run("retries until the deadline when every node is down", func(t *testing.T) {
		n1 := newFakeNode(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		c := watchClient(t, 0, nil, n1)
		start := time.Now()
		err := c.WatchDoc(ctxFor(t, 500*time.Millisecond), "d", nil, func(client.DocEvent) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second || len(n1.requests()) < 2 {
			t.Errorf("want several attempts, then the deadline: %d requests, %v after %s", len(n1.requests()), err, time.Since(start))
		}
	})
}
