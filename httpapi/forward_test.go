package httpapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/countd/countd/api"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

// leaderRequests is how many requests the leader answered for a route and
// status: forwarded requests show up there, local answers do not.
func leaderRequests(t *testing.T, leader *harness.Node, method, route, code string) float64 {
	t.Helper()
	v, _ := harness.Scrape(t, leader.URL).Value("countd_http_requests_total", "method", method, "route", route, "code", code)
	return v
}

func TestForwardWrites(t *testing.T) {
	nodes := harness.StartClusterWith(t, 3, httpapi.Config{ForwardWrites: true})
	leader := harness.WaitStable(t, nodes)
	followers := harness.FollowersOf(nodes, leader)
	f1, f2 := followers[0], followers[1]
	key := []string{api.HeaderIdempotencyKey, "forward-key"}

	var first reply
	t.Run("write through a follower", func(t *testing.T) {
		m, r := mint(t, f1.URL, "fw", "?count=2", key...)
		if m.First != 1 || m.Value != 2 || m.Count != 2 {
			t.Errorf("forwarded mint: %+v", m)
		}
		if r.header.Get(api.HeaderReplayed) != "" || r.header.Get("Location") != "" {
			t.Errorf("first forwarded mint has headers %v", r.header)
		}
		if got := leaderRequests(t, leader, "POST", nextRoute, "200"); got != 1 {
			t.Errorf("the leader answered %v POST next, want 1 (the forwarded one)", got)
		}
		first = r
	})

	t.Run("idempotent replay through another follower", func(t *testing.T) {
		r := sendJSON(t, http.MethodPost, f2.URL+"/v1/counters/fw/next?count=2", "", key...)
		wantOK(t, r, http.StatusOK)
		if !bytes.Equal(r.body, first.body) {
			t.Errorf("replay body %s differs from the first answer %s", r.body, first.body)
		}
		if r.header.Get(api.HeaderReplayed) != "true" {
			t.Errorf("replay without %s: true: %v", api.HeaderReplayed, r.header)
		}
		if r.header.Get(api.HeaderIndex) != first.header.Get(api.HeaderIndex) {
			t.Errorf("replay index %s, first %s", r.header.Get(api.HeaderIndex), first.header.Get(api.HeaderIndex))
		}
		if c := getCounter(t, leader.URL, "fw"); c.Value != 2 {
			t.Errorf("the replay minted again: %+v", c)
		}
	})

	t.Run("linearizable read is proxied", func(t *testing.T) {
		before := leaderRequests(t, leader, "GET", "/v1/counters/:id", "200")
		r := sendJSON(t, http.MethodGet, f1.URL+"/v1/counters/fw", "")
		wantOK(t, r, http.StatusOK)
		var c api.Counter
		decodeStrict(t, r.body, &c, counterKeys...)
		if c.Value != 2 {
			t.Errorf("linearizable read through a follower: %+v", c)
		}
		if r.header.Get(api.HeaderLastContact) != "" {
			t.Errorf("a proxied linearizable read carries %s", api.HeaderLastContact)
		}
		if got := leaderRequests(t, leader, "GET", "/v1/counters/:id", "200") - before; got != 1 {
			t.Errorf("the leader answered %v more counter reads, want 1", got)
		}
	})

	t.Run("stale read is served locally", func(t *testing.T) {
		before := leaderRequests(t, leader, "GET", "/v1/counters/:id", "200")
		r := sendJSON(t, http.MethodGet, f1.URL+"/v1/counters/fw?consistency=stale", "")
		wantOK(t, r, http.StatusOK)
		if r.header.Get(api.HeaderLastContact) == "" {
			t.Errorf("stale read without %s", api.HeaderLastContact)
		}
		if got := leaderRequests(t, leader, "GET", "/v1/counters/:id", "200") - before; got != 0 {
			t.Errorf("a stale read reached the leader (%v requests)", got)
		}
	})

	t.Run("bad input is answered by the follower", func(t *testing.T) {
		for _, tc := range []struct{ method, pq, body string }{
			{http.MethodPost, "/v1/counters/fw/next?count=0", ""},
			{http.MethodPost, "/v1/counters/a%20b/next", ""},
			{http.MethodPost, "/v1/counters/fw/add", `{"delta":1,"x":2}`},
		} {
			r := sendJSON(t, tc.method, f1.URL+tc.pq, tc.body)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s %s via a forwarding follower: want 400, got %s", tc.method, tc.pq, r)
			}
		}
		if got := leaderRequests(t, leader, "POST", nextRoute, "400"); got != 0 {
			t.Errorf("bad input reached the leader (%v requests)", got)
		}
	})

	t.Run("headers and statuses pass through verbatim", func(t *testing.T) {
		create := []string{"If-None-Match", "*"}
		r := sendJSON(t, http.MethodPut, f1.URL+"/v1/docs/fwdoc", `{"a":1}`, create...)
		wantOK(t, r, http.StatusOK)
		if etag := r.header.Get("ETag"); etag != `"1"` {
			t.Errorf("forwarded PUT: ETag %q, want \"1\"", etag)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("forwarded PUT: Content-Type %q", ct)
		}
		checkError(t, sendJSON(t, http.MethodPut, f2.URL+"/v1/docs/fwdoc", `{"a":2}`, create...), http.StatusPreconditionFailed, api.CodePreconditionFailed)
		checkError(t, sendJSON(t, http.MethodPut, f2.URL+"/v1/docs/fwdoc", `{"a":2}`, "If-Match", `"7"`), http.StatusPreconditionFailed, api.CodePreconditionFailed)
		r = sendJSON(t, http.MethodPut, f2.URL+"/v1/docs/fwdoc", `{"a":2}`, "If-Match", `"1"`)
		wantOK(t, r, http.StatusOK)
		if etag := r.header.Get("ETag"); etag != `"2"` {
			t.Errorf("forwarded PUT with If-Match: ETag %q, want \"2\"", etag)
		}
	})

	t.Run("a forwarded request is never forwarded again", func(t *testing.T) {
		pq := "/v1/counters/fw/next"
		checkRedirect(t, sendJSON(t, http.MethodPost, f1.URL+pq, "", httpapi.HeaderForwardedBy, "elsewhere"), leader, pq)
	})

	t.Run("forwarding off redirects", func(t *testing.T) {
		// A second API over the same follower node, without forwarding.
		off := httptest.NewServer(httpapi.New(f1.Node, httpapi.Config{Logger: harness.Logger()}))
		defer off.Close()
		pq := "/v1/counters/fw/next?count=2"
		checkRedirect(t, sendJSON(t, http.MethodPost, off.URL+pq, "", key...), leader, pq)
	})

	t.Run("unreachable leader", func(t *testing.T) {
		// Raft keeps running, so the followers still name the leader, but
		// its HTTP API is gone: nothing can be sent, and the answer says so.
		before := leader.Node.State().AppliedIndex()
		_ = leader.HTTP.Close()
		// A fresh API on f1, so its forwarder holds no keep-alive
		// connection from the subtests above: a request written into one
		// the leader has just closed may have reached it, and is rightly
		// reported as unknown. A new connection is refused before anything
		// is sent.
		fresh := httptest.NewServer(httpapi.New(f1.Node, httpapi.Config{ForwardWrites: true, Logger: harness.Logger()}))
		defer fresh.Close()
		r := sendJSON(t, http.MethodPost, fresh.URL+"/v1/counters/fw/next", "")
		checkError(t, r, http.StatusServiceUnavailable, api.CodeNoLeader)
		if !strings.Contains(string(r.body), "was not sent") {
			t.Errorf("unreachable leader: %s", r.body)
		}
		if r.header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		if c, _, _ := leader.Node.State().Counter("fw"); c.Value != 2 || leader.Node.State().AppliedIndex() != before {
			t.Errorf("a write that was not sent changed state: %+v", c)
		}
	})
}

// TestForwardOnRequest: without -forward-writes, a follower proxies a
// request that asks for it (HeaderForward: a browser page cannot follow a
// redirect to another origin) and redirects the others.
func TestForwardOnRequest(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	leader := harness.WaitStable(t, nodes)
	f := harness.FollowersOf(nodes, leader)[0]

	checkRedirect(t, sendJSON(t, http.MethodPost, f.URL+"/v1/counters/asked/next", ""), leader, "/v1/counters/asked/next")
	m, _ := mint(t, f.URL, "asked", "", httpapi.HeaderForward, "1")
	if m.Value != 1 {
		t.Errorf("a mint through a follower asked to forward: %+v", m)
	}
	r := sendJSON(t, http.MethodPut, f.URL+"/v1/counters/asked", `{"value":10}`, httpapi.HeaderForward, "1")
	wantOK(t, r, http.StatusOK)
	if c := getCounter(t, leader.URL, "asked"); c.Value != 10 {
		t.Errorf("a forwarded set with a body: %+v", c)
	}
}
