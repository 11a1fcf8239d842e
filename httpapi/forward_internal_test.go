package httpapi

// forward's hop following and failure handling, against stand-in nodes: a
// real cluster cannot be made to name a stale leader on demand.

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
)

// forwardingServer is an API with forwarding on over a real in-memory node
// (forward itself never consults the node).
func forwardingServer(t *testing.T) *Server {
	t.Helper()
	node, err := cluster.Start(cluster.Config{NodeID: "fwd", InMemory: true, HTTPAddr: "127.0.0.1:1", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Shutdown() })
	return New(node, Config{ForwardWrites: true, Logger: slog.New(slog.DiscardHandler)})
}

// seen is what a stand-in node received.
type seen struct {
	method, uri, body, key, forwardedBy, contentType string
}

func record(t *testing.T, r *http.Request) seen {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("stand-in node: read body: %v", err)
	}
	return seen{r.Method, r.URL.RequestURI(), string(b), r.Header.Get(api.HeaderIdempotencyKey),
		r.Header.Get(HeaderForwardedBy), r.Header.Get("Content-Type")}
}

// forwardRequest runs s.forward for a POST with a body and an
// Idempotency-Key, as the error handler would for a follower.
func forwardRequest(s *Server, leader string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/counters/c/next?count=3", strings.NewReader(`{"x":1}`))
	req.Header.Set(api.HeaderIdempotencyKey, "k1")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	c := s.echo.NewContext(req, rec)
	c.Set(bodyKey, []byte(`{"x":1}`))
	s.forward(c, leader)
	return rec
}

func TestForwardFollowsMovedLeadership(t *testing.T) {
	s := forwardingServer(t)
	var atLeader, atOld atomic.Value
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atLeader.Store(record(t, r))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(api.HeaderIndex, "42")
		w.Header().Set(api.HeaderReplayed, "true")
		w.Header().Set("ETag", `"9"`)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"from":"leader"}`)
	}))
	defer leader.Close()
	// The node this follower believes leads has lost leadership since.
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atOld.Store(record(t, r))
		w.Header().Set(api.HeaderLeader, leader.URL)
		w.Header().Set("Location", leader.URL+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer old.Close()

	rec := forwardRequest(s, old.URL)
	if rec.Code != http.StatusCreated || rec.Body.String() != `{"from":"leader"}` {
		t.Fatalf("want the leader's 201 verbatim, got %d %s", rec.Code, rec.Body)
	}
	for k, want := range map[string]string{api.HeaderIndex: "42", api.HeaderReplayed: "true", "ETag": `"9"`, "Content-Type": "application/json"} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("response %s: %q, want %q", k, got, want)
		}
	}
	want := seen{http.MethodPost, "/v1/counters/c/next?count=3", `{"x":1}`, "k1", "fwd", "application/json"}
	for name, v := range map[string]*atomic.Value{"the old leader": &atOld, "the leader": &atLeader} {
		if got, _ := v.Load().(seen); got != want {
			t.Errorf("%s received %+v, want %+v", name, got, want)
		}
	}
}

func TestForwardGivesUpAfterMaxHops(t *testing.T) {
	s := forwardingServer(t)
	var hits atomic.Int32
	var self string
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set(api.HeaderLeader, self)
		w.WriteHeader(http.StatusTemporaryRedirect)
		_, _ = io.WriteString(w, `{"error":"not the leader","code":"not_leader"}`)
	}))
	defer loop.Close()
	self = loop.URL

	rec := forwardRequest(s, loop.URL)
	if rec.Code != http.StatusTemporaryRedirect || rec.Header().Get(api.HeaderLeader) != loop.URL {
		t.Errorf("want the last 307, got %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if n := hits.Load(); n != maxForwardHops {
		t.Errorf("%d attempts, want %d", n, maxForwardHops)
	}
}

func TestForwardLostConnectionIsUnknown(t *testing.T) {
	s := forwardingServer(t)
	var got atomic.Bool
	// The leader receives the whole request, then the connection drops
	// before it answers: it may have applied the write.
	vanishing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		got.Store(true)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		_ = conn.Close()
	}))
	defer vanishing.Close()

	rec := forwardRequest(s, vanishing.URL)
	if !got.Load() {
		t.Fatal("the stand-in leader never received the request")
	}
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "may or may not have been applied") ||
		!strings.Contains(rec.Body.String(), `"code":"no_leader"`) {
		t.Errorf("want 503 with an unknown outcome, got %d %s", rec.Code, rec.Body)
	}
}
