package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

// checkRedirect checks a follower's TRY-style 307 for pathAndQuery.
func checkRedirect(t *testing.T, r reply, leader *harness.Node, pathAndQuery string) {
	t.Helper()
	m := checkError(t, r, http.StatusTemporaryRedirect, api.CodeNotLeader)
	if loc := r.header.Get("Location"); loc != leader.URL+pathAndQuery {
		t.Errorf("Location: want %q, got %q", leader.URL+pathAndQuery, loc)
	}
	if h := r.header.Get(api.HeaderLeader); h != leader.URL {
		t.Errorf("%s: want %q, got %q", api.HeaderLeader, leader.URL, h)
	}
	var e api.Error
	_ = json.Unmarshal(r.body, &e)
	if e.Error != "not the leader" || e.Leader != leader.URL {
		t.Errorf("body: want {\"error\":\"not the leader\",\"code\":\"not_leader\",\"leader\":%q}, got %s", leader.URL, r.body)
	}
	if _, ok := m["leader"]; !ok {
		t.Errorf("body has no leader: %s", r.body)
	}
}

func TestThreeNodeCluster(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	leader := harness.WaitStable(t, nodes)
	follower := harness.FollowersOf(nodes, leader)[0]
	key := []string{api.HeaderIdempotencyKey, "redirect-key"}

	t.Run("write redirect", func(t *testing.T) {
		pq := "/v1/counters/rd/next?count=2"
		r := sendJSON(t, http.MethodPost, follower.URL+pq, "", key...)
		checkRedirect(t, r, leader, pq)
		// The 307 wrote nothing; following it mints exactly once.
		r = sendJSON(t, http.MethodPost, r.header.Get("Location"), "", key...)
		wantOK(t, r, 200)
		var m api.Mint
		decodeStrict(t, r.body, &m, mintKeys...)
		if m.First != 1 || m.Value != 2 || m.Count != 2 {
			t.Errorf("mint after redirect: %+v", m)
		}

		pq = "/v1/counters/rd"
		checkRedirect(t, sendJSON(t, http.MethodPut, follower.URL+pq, `{"increment":3}`), leader, pq)
		checkRedirect(t, sendJSON(t, http.MethodPost, follower.URL+pq+"/add", `{"delta":3}`), leader, pq+"/add")
		checkRedirect(t, sendJSON(t, http.MethodDelete, follower.URL+pq+"?force=true", ""), leader, pq+"?force=true")
		if c := getCounter(t, leader.URL, "rd"); c.Value != 2 || c.Increment != 1 {
			t.Errorf("redirected writes changed the counter: %+v", c)
		}
	})

	t.Run("linearizable read redirect", func(t *testing.T) {
		for _, pq := range []string{
			"/v1/counters/rd",
			"/v1/counters/rd?consistency=linearizable",
			"/v1/counters?prefix=r",
		} {
			checkRedirect(t, sendJSON(t, http.MethodGet, follower.URL+pq, ""), leader, pq)
		}
	})

	t.Run("validation before redirect", func(t *testing.T) {
		for _, tc := range []struct {
			method, pq, body string
			headers          []string
			code             api.Code
		}{
			{http.MethodGet, "/v1/counters/a%20b", "", nil, api.CodeInvalidName},
			{http.MethodPost, "/v1/counters/../next", "", nil, api.CodeInvalidName},
			{http.MethodPost, "/v1/counters/a%20b/next", "", nil, api.CodeInvalidName},
			{http.MethodPost, "/v1/counters/a%20b/add", `{"delta":1}`, nil, api.CodeInvalidName},
			{http.MethodPut, "/v1/counters/a%20b", `{"value":1}`, nil, api.CodeInvalidName},
			{http.MethodDelete, "/v1/counters/a%20b", "", nil, api.CodeInvalidName},
			{http.MethodPost, "/v1/counters/ok/next?count=0", "", nil, api.CodeBadRequest},
			{http.MethodPost, "/v1/counters/ok/add", `{"delta":1,"x":2}`, nil, api.CodeBadRequest},
			{http.MethodPost, "/v1/counters/ok/add", `{}`, nil, api.CodeBadRequest},
			{http.MethodPut, "/v1/counters/ok", `{"increment":0}`, nil, api.CodeBadRequest},
			{http.MethodPost, "/v1/counters/ok/next", "", []string{api.HeaderIdempotencyKey, "bad\tkey"}, api.CodeBadRequest},
			{http.MethodGet, "/v1/counters/ok?consistency=bogus", "", nil, api.CodeBadRequest},
			{http.MethodDelete, "/v1/counters/ok?force=maybe", "", nil, api.CodeBadRequest},
		} {
			r := sendJSON(t, tc.method, follower.URL+tc.pq, tc.body, tc.headers...)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s %s on a follower: want 400 %s, got %s", tc.method, tc.pq, tc.code, r)
				continue
			}
			checkError(t, r, http.StatusBadRequest, tc.code)
		}
	})

	t.Run("stale read on a follower", func(t *testing.T) {
		var c api.Counter
		harness.WaitFor(t, 10*time.Second, "the follower to apply rd", func() bool {
			r := sendJSON(t, http.MethodGet, follower.URL+"/v1/counters/rd?consistency=stale", "")
			wantOK(t, r, 200)
			lc := r.header.Get(api.HeaderLastContact)
			ms, err := strconv.ParseInt(lc, 10, 64)
			if err != nil || ms < 0 {
				t.Fatalf("%s on a follower: %q", api.HeaderLastContact, lc)
			}
			decodeStrict(t, r.body, &c, counterKeys...)
			return c.Value == 2
		})
		r := sendJSON(t, http.MethodGet, follower.URL+"/v1/counters?consistency=stale&prefix=rd", "")
		wantOK(t, r, 200)
		if r.header.Get(api.HeaderLastContact) == "" {
			t.Errorf("stale list without %s", api.HeaderLastContact)
		}
	})

	t.Run("cluster status and health on every node", func(t *testing.T) {
		for _, n := range nodes {
			r := sendJSON(t, http.MethodGet, n.URL+"/v1/cluster", "")
			wantOK(t, r, 200)
			var st api.Cluster
			if err := json.Unmarshal(r.body, &st); err != nil {
				t.Fatal(err)
			}
			if st.Name != "countd" || st.Leader != leader.Node.ID() || st.LeaderHTTP != leader.URL || st.NodeID != n.Node.ID() {
				t.Errorf("%s: name/leader: %s", n.Node.ID(), r.body)
			}
			if len(st.Members) != 3 {
				t.Fatalf("%s: want 3 members, got %s", n.Node.ID(), r.body)
			}
			leaders := 0
			for _, m := range st.Members {
				if m.HTTPAddr == "" || m.RaftAddr == "" || m.GossipAddr == "" || m.Status != "alive" || m.Suffrage != "voter" {
					t.Errorf("%s: member %+v", n.Node.ID(), m)
				}
				if m.Leader {
					leaders++
				}
			}
			if leaders != 1 {
				t.Errorf("%s: %d members marked leader", n.Node.ID(), leaders)
			}
			for _, p := range []string{"/healthz", "/readyz"} {
				if r := sendJSON(t, http.MethodGet, n.URL+p, ""); r.status != 200 {
					t.Errorf("%s %s: %s", n.Node.ID(), p, r)
				}
			}
		}
	})
}

func TestNoLeader(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	survivor := harness.WaitStable(t, nodes)
	m, _ := mint(t, survivor.URL, "nl", "")
	if m.Value != 1 {
		t.Fatalf("first mint: %+v", m)
	}
	var wg sync.WaitGroup
	for _, n := range harness.FollowersOf(nodes, survivor) {
		wg.Add(1)
		go func() { defer wg.Done(); n.Stop() }()
	}
	wg.Wait()

	var r reply
	harness.WaitFor(t, 15*time.Second, "the survivor to answer 503", func() bool {
		r = sendJSON(t, http.MethodPost, survivor.URL+"/v1/counters/nl/next", "")
		return r.status == http.StatusServiceUnavailable
	})
	checkError(t, r, http.StatusServiceUnavailable, api.CodeNoLeader)
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After: %q", r.header.Get("Retry-After"))
	}
	// Once it knows it has no leader, it answers at once: writes and
	// linearizable reads with 503, stale reads with its (unchanged) state.
	harness.WaitFor(t, 10*time.Second, "the survivor to know it has no leader", func() bool { return !survivor.Node.IsLeader() })
	for _, tc := range []struct{ method, pq, body string }{
		{http.MethodPost, "/v1/counters/nl/next", ""},
		{http.MethodPost, "/v1/counters/nl/add", `{"delta":1}`},
		{http.MethodPut, "/v1/counters/nl", `{"value":9}`},
		{http.MethodDelete, "/v1/counters/nl", ""},
		{http.MethodGet, "/v1/counters/nl", ""},
	} {
		r := sendJSON(t, tc.method, survivor.URL+tc.pq, tc.body)
		checkError(t, r, http.StatusServiceUnavailable, api.CodeNoLeader)
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 without Retry-After", tc.method, tc.pq)
		}
	}
	if r := sendJSON(t, http.MethodGet, survivor.URL+"/readyz", ""); r.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz without a leader: %s", r)
	}
	r = sendJSON(t, http.MethodGet, survivor.URL+"/v1/counters/nl?consistency=stale", "")
	wantOK(t, r, 200)
	var c api.Counter
	decodeStrict(t, r.body, &c, counterKeys...)
	if c.Value != 1 {
		t.Errorf("503s changed the counter: %+v", c)
	}
	if _, err := strconv.ParseInt(r.header.Get(api.HeaderLastContact), 10, 64); err != nil {
		t.Errorf("stale read without a leader: %s = %q", api.HeaderLastContact, r.header.Get(api.HeaderLastContact))
	}
}

// TestConsoleServed: /ui/ serves the console with a strict CSP and
// nosniff, open to anyone (it holds no data) even with ACLs on, and an
// unknown file is a JSON 404.
func TestConsoleServed(t *testing.T) {
	n := harness.StartInMemWith(t, cluster.Config{InitialManagementToken: fsm.HashSecret("console-test-token-0123")}, httpapi.Config{ACL: true})
	r := sendJSON(t, http.MethodGet, n.URL+"/ui/", "")
	if r.status != http.StatusOK {
		t.Fatalf("/ui/: %s", r)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q: want self-only scripts, no inline, nothing by default", csp)
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("headers %v", r.header)
	}
	if !strings.Contains(string(r.body), `<script src="app.js" defer></script>`) {
		t.Errorf("index.html: %s", r.body)
	}
	js := sendJSON(t, http.MethodGet, n.URL+"/ui/app.js", "")
	if ct := js.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("app.js served as %q", ct)
	}
	checkError(t, sendJSON(t, http.MethodGet, n.URL+"/ui/nope.js", ""), http.StatusNotFound, api.CodeNotFound)
	if r := sendJSON(t, http.MethodGet, n.URL+"/ui", ""); r.status != http.StatusMovedPermanently || r.header.Get("Location") != "/ui/" {
		t.Errorf("/ui: %s", r)
	}
	// The API behind it still wants a token.
	checkError(t, sendJSON(t, http.MethodGet, n.URL+"/v1/counters", ""), http.StatusUnauthorized, api.CodeUnauthorized)
}
