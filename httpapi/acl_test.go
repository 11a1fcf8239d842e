package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func bearer(secret string) []string { return []string{"Authorization", "Bearer " + secret} }

// bootstrap makes the cluster's management token through base.
func bootstrap(t *testing.T, base string) api.ACLToken {
	t.Helper()
	r := sendJSON(t, http.MethodPost, base+"/v1/acl/bootstrap", "")
	wantOK(t, r, http.StatusOK)
	var tok api.ACLToken
	decodeStrict(t, r.body, &tok, "accessor", "secret", "description", "management", "rules", "index")
	if !tok.Management || len(tok.Secret) < 16 || tok.Accessor == "" {
		t.Fatalf("bootstrap token: %+v", tok)
	}
	return tok
}

func createToken(t *testing.T, base, mgmt, body string) api.ACLToken {
	t.Helper()
	r := sendJSON(t, http.MethodPost, base+"/v1/acl/tokens", body, bearer(mgmt)...)
	wantOK(t, r, http.StatusOK)
	var tok api.ACLToken
	if err := json.Unmarshal(r.body, &tok); err != nil || tok.Secret == "" {
		t.Fatalf("create token: %v %s", err, r)
	}
	return tok
}

// TestACLAttacksOfIssue11 are the unauthenticated requests that once wiped
// or stopped a cluster: each gets a 401 and changes nothing.
func TestACLAttacksOfIssue11(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{ACL: true})
	mgmt := bootstrap(t, n.URL)
	wantOK(t, sendJSON(t, http.MethodPost, n.URL+"/v1/counters/c/next?count=45", "", bearer(mgmt.Secret)...), http.StatusOK)
	for _, req := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/snapshot?force=true", "CNTDSNAP"},
		{http.MethodGet, "/v1/snapshot", ""},
		{http.MethodPost, "/v1/cluster/leave", ""},
		{http.MethodPost, "/v1/cluster/transfer-leader", ""},
		{http.MethodDelete, "/v1/cluster/members/n2", ""},
		{http.MethodPut, "/v1/counters/c", `{"value":0}`},
		{http.MethodPost, "/v1/counters/c/next", ""},
		{http.MethodGet, "/v1/counters/c", ""},
		{http.MethodGet, "/v1/cluster", ""},
		{http.MethodGet, "/metrics", ""},
		{http.MethodPost, "/v1/acl/tokens", `{"management":true}`},
	} {
		for _, auth := range [][]string{nil, bearer("not-a-token-of-this-cluster"), {"Authorization", mgmt.Secret}} {
			r := sendJSON(t, req.method, n.URL+req.path, req.body, auth...)
			checkError(t, r, http.StatusUnauthorized, api.CodeUnauthorized)
			if r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", req.method, req.path)
			}
		}
	}
	if c := getCounterAs(t, n.URL, "c", mgmt.Secret); c.Value != 45 {
		t.Fatalf("counter after the attacks: %+v", c)
	}
	// Health checks stay open.
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := send(t, http.MethodGet, n.URL+p, nil); r.status != http.StatusOK {
			t.Errorf("%s with ACLs on: %s", p, r)
		}
	}
	// The bootstrap works once.
	checkError(t, sendJSON(t, http.MethodPost, n.URL+"/v1/acl/bootstrap", ""), http.StatusConflict, api.CodeConflict)
}

func getCounterAs(t *testing.T, base, id, secret string) api.Counter {
	t.Helper()
	r := send(t, http.MethodGet, base+"/v1/counters/"+id, nil, bearer(secret)...)
	wantOK(t, r, http.StatusOK)
	var c api.Counter
	decodeStrict(t, r.body, &c, counterKeys...)
	return c
}

func TestACLScopesAndPrefixes(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{ACL: true})
	mgmt := bootstrap(t, n.URL).Secret
	app := createToken(t, n.URL, mgmt, `{"description":"orders app","rules":[
		{"resource":"counters","prefix":"orders.","access":"write"},
		{"resource":"docs","prefix":"","access":"read"},
		{"resource":"items","prefix":"t1","access":"write"}]}`)
	reader := createToken(t, n.URL, mgmt, `{"rules":[{"resource":"*","prefix":"","access":"read"}]}`)
	for _, path := range []string{"/v1/counters/orders.1/next", "/v1/counters/invoices/next"} {
		wantOK(t, sendJSON(t, http.MethodPost, n.URL+path, "", bearer(mgmt)...), http.StatusOK)
	}
	wantOK(t, sendJSON(t, http.MethodPut, n.URL+"/v1/docs/cfg", `{"a":1}`, bearer(mgmt)...), http.StatusOK)

	type tc struct {
		method, path, body string
		secret             string
		status             int
		missing            string // in the 403's message
	}
	for _, c := range []tc{
		{http.MethodPost, "/v1/counters/orders.7/next", "", app.Secret, 200, ""},
		{http.MethodGet, "/v1/counters/orders.7", "", app.Secret, 200, ""}, // write implies read
		{http.MethodPost, "/v1/counters/invoices/next", "", app.Secret, 403, `counters:write on "invoices"`},
		{http.MethodGet, "/v1/counters/invoices", "", app.Secret, 403, `counters:read on "invoices"`},
		{http.MethodPost, "/v1/counters/orders/next", "", app.Secret, 403, `counters:write on "orders"`},
		{http.MethodGet, "/v1/docs/cfg", "", app.Secret, 200, ""},
		{http.MethodPut, "/v1/docs/cfg", `{"a":2}`, app.Secret, 403, `docs:write on "cfg"`},
		{http.MethodPost, "/v1/queues/orders.1/join", `{"process_id":"p"}`, app.Secret, 403, `queues:write`},
		{http.MethodPost, "/v1/items", `[{"tenant":"t1","id":"a"}]`, app.Secret, 200, ""},
		{http.MethodPost, "/v1/items", `[{"tenant":"t1","id":"b"},{"tenant":"t2","id":"c"}]`, app.Secret, 403, `items:write on "t2"`},
		{http.MethodGet, "/v1/items/t2/count", "", app.Secret, 403, `items:read on "t2"`},
		{http.MethodGet, "/v1/cluster", "", app.Secret, 403, "cluster:read"},
		{http.MethodGet, "/metrics", "", app.Secret, 403, "cluster:read"},
		{http.MethodGet, "/v1/cluster", "", reader.Secret, 200, ""},
		{http.MethodPost, "/v1/cluster/transfer-leader", "", reader.Secret, 403, "cluster:write"},
		{http.MethodGet, "/v1/snapshot", "", reader.Secret, 403, "cluster:write"},
		{http.MethodPost, "/v1/counters/invoices/next", "", reader.Secret, 403, "counters:write"},
		{http.MethodGet, "/v1/acl/tokens", "", reader.Secret, 403, "management token"},
		{http.MethodPost, "/v1/acl/tokens", `{"management":true}`, app.Secret, 403, "management token"},
		{http.MethodGet, "/v1/acl/tokens", "", mgmt, 200, ""},
	} {
		r := sendJSON(t, c.method, n.URL+c.path, c.body, bearer(c.secret)...)
		if c.status != 403 {
			if r.status != c.status {
				t.Errorf("%s %s: %s, want %d", c.method, c.path, r, c.status)
			}
			continue
		}
		checkError(t, r, http.StatusForbidden, api.CodeForbidden)
		if !strings.Contains(string(r.body), strings.ReplaceAll(c.missing, `"`, `\"`)) {
			t.Errorf("%s %s: 403 %s does not name %s", c.method, c.path, r.body, c.missing)
		}
	}
	// The items batch refused for t2 added nothing for t1 either.
	r := send(t, http.MethodGet, n.URL+"/v1/items/t1/count", nil, bearer(app.Secret)...)
	if !strings.Contains(string(r.body), `"count":1`) {
		t.Fatalf("t1 after a refused batch: %s", r)
	}
	// A list shows only what the token may read.
	r = send(t, http.MethodGet, n.URL+"/v1/counters", nil, bearer(app.Secret)...)
	var list api.CounterList
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Counters) != 2 {
		t.Fatalf("app's list: %s", r)
	}
	for _, c := range list.Counters {
		if !strings.HasPrefix(c.ID, "orders.") {
			t.Fatalf("app's list shows %s", c.ID)
		}
	}
	// whoami.
	r = send(t, http.MethodGet, n.URL+"/v1/acl/whoami", nil, bearer(app.Secret)...)
	var me api.ACLToken
	decodeStrict(t, r.body, &me, "accessor", "description", "management", "rules", "index")
	if me.Accessor != app.Accessor || len(me.Rules) != 3 || me.Description != "orders app" {
		t.Fatalf("whoami: %s", r)
	}
}

// TestACLRevocationOnEveryNode: a deleted token stops working on each node
// at the index of its deletion, stale reads on followers included, and a
// 401 or 403 comes before a follower's redirect.
func TestACLRevocationOnEveryNode(t *testing.T) {
	nodes := harness.StartClusterWith(t, 3, httpapi.Config{ACL: true})
	leader := harness.WaitLeader(t, nodes)
	mgmt := bootstrap(t, leader.URL).Secret
	app := createToken(t, leader.URL, mgmt, `{"rules":[{"resource":"counters","prefix":"","access":"read"}]}`)
	for _, f := range harness.FollowersOf(nodes, leader) {
		harness.WaitFor(t, 10*time.Second, f.Node.ID()+" to apply the token", func() bool {
			return f.Node.State().AppliedIndex() >= app.Index
		})
		// Refusals come before the redirect a write would get.
		checkError(t, sendJSON(t, http.MethodPost, f.URL+"/v1/counters/x/next", ""), http.StatusUnauthorized, api.CodeUnauthorized)
		checkError(t, sendJSON(t, http.MethodPost, f.URL+"/v1/counters/x/next", "", bearer(app.Secret)...), http.StatusForbidden, api.CodeForbidden)
		if r := sendJSON(t, http.MethodPost, f.URL+"/v1/counters/x/next", "", bearer(mgmt)...); r.status != http.StatusTemporaryRedirect {
			t.Fatalf("a follower answered an authorised write with %s, want 307", r)
		}
	}
	r := sendJSON(t, http.MethodDelete, leader.URL+"/v1/acl/tokens/"+app.Accessor, "", bearer(mgmt)...)
	wantOK(t, r, http.StatusNoContent)
	deleted := indexOf(t, r)
	for _, n := range nodes {
		harness.WaitFor(t, 10*time.Second, n.Node.ID()+" to apply the deletion", func() bool {
			return n.Node.State().AppliedIndex() >= deleted
		})
		// A follower that no longer knows the token cannot tell a deleted
		// one from one it has not applied yet: it sends the request on to
		// the leader, whose word is final.
		r := send(t, http.MethodGet, n.URL+"/v1/counters/x?consistency=stale", nil, bearer(app.Secret)...)
		if n != leader {
			if r.status != http.StatusTemporaryRedirect || r.header.Get(api.HeaderLeader) != leader.URL {
				t.Fatalf("%s with a deleted token: %s, want a 307 to the leader", n.Node.ID(), r)
			}
			r = send(t, http.MethodGet, leader.URL+"/v1/counters/x?consistency=stale", nil, bearer(app.Secret)...)
		}
		checkError(t, r, http.StatusUnauthorized, api.CodeUnauthorized)
	}
	checkError(t, send(t, http.MethodGet, leader.URL+"/v1/acl/tokens/"+app.Accessor, nil, bearer(mgmt)...), http.StatusNotFound, api.CodeNotFound)
}

func TestACLEndpointsNeedACLsOn(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	checkError(t, sendJSON(t, http.MethodPost, n.URL+"/v1/acl/bootstrap", ""), http.StatusBadRequest, api.CodeBadRequest)
	// Without -acl everything else stays open, as before.
	wantOK(t, sendJSON(t, http.MethodPost, n.URL+"/v1/counters/c/next", ""), http.StatusOK)
}

func TestACLSecretsChosenByTheClient(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{ACL: true})
	r := sendJSON(t, http.MethodPost, n.URL+"/v1/acl/bootstrap", `{"secret":"short"}`)
	checkError(t, r, http.StatusBadRequest, api.CodeBadRequest)
	const secret = "0123456789abcdef-chosen"
	body := `{"accessor":"root-token","secret":"` + secret + `"}`
	r = sendJSON(t, http.MethodPost, n.URL+"/v1/acl/bootstrap", body, "Idempotency-Key", "boot-1")
	wantOK(t, r, http.StatusOK)
	// A retry with the same key replays: the client chose the accessor and
	// the secret, so the request is the same, and it knows the secret.
	r = sendJSON(t, http.MethodPost, n.URL+"/v1/acl/bootstrap", body, "Idempotency-Key", "boot-1")
	if r.status != http.StatusOK || r.header.Get(api.HeaderReplayed) != "true" {
		t.Fatalf("retried bootstrap: %s", r)
	}
	wantOK(t, send(t, http.MethodGet, n.URL+"/v1/acl/whoami", nil, bearer(secret)...), http.StatusOK)
	// Another token may not reuse a secret.
	r = sendJSON(t, http.MethodPost, n.URL+"/v1/acl/tokens", `{"secret":"`+secret+`"}`, bearer(secret)...)
	checkError(t, r, http.StatusConflict, api.CodeConflict)
}

// TestEveryRouteHasAPermission: every endpoint is registered from the
// routes table with its permission; one added around it would be refused
// to every token but a management one, and fails here first.
func TestEveryRouteHasAPermission(t *testing.T) {
	srv := httpapi.New(harness.StartInMem(t, httpapi.Config{}).Node, httpapi.Config{ACL: true})
	for _, rt := range srv.Routes() {
		if strings.HasPrefix(rt.Method, "echo_") || rt.Path == "/*" {
			continue
		}
		if !srv.HasPermission(rt.Method, rt.Path) {
			t.Errorf("%s %s was not registered from the routes table", rt.Method, rt.Path)
		}
	}
}

// TestACLInitialManagementToken: a cluster started with the operator's
// token (-acl-initial-management-token-file) is bootstrapped with it by its
// leader, and the bootstrap endpoint then refuses.
func TestACLInitialManagementToken(t *testing.T) {
	const secret = "operator-chosen-secret-0001"
	n := harness.StartInMemWith(t, cluster.Config{InitialManagementToken: fsm.HashSecret(secret)}, httpapi.Config{ACL: true})
	var me api.ACLToken
	harness.WaitFor(t, 10*time.Second, "the initial management token", func() bool {
		r := send(t, http.MethodGet, n.URL+"/v1/acl/whoami", nil, bearer(secret)...)
		return r.status == http.StatusOK && json.Unmarshal(r.body, &me) == nil
	})
	if !me.Management || me.Accessor != cluster.InitialManagementAccessor {
		t.Fatalf("whoami: %+v", me)
	}
	checkError(t, sendJSON(t, http.MethodPost, n.URL+"/v1/acl/bootstrap", ""), http.StatusConflict, api.CodeConflict)
}

// TestACLForwardedRequestsCarryTheClientsToken: with -forward-writes a
// follower checks the token itself, then forwards the request with the
// client's own token, which the leader checks again.
func TestACLForwardedRequestsCarryTheClientsToken(t *testing.T) {
	nodes := harness.StartClusterWith(t, 3, httpapi.Config{ACL: true, ForwardWrites: true})
	leader := harness.WaitLeader(t, nodes)
	mgmt := bootstrap(t, leader.URL).Secret
	app := createToken(t, leader.URL, mgmt, `{"rules":[{"resource":"counters","prefix":"fwd.","access":"write"}]}`)
	f := harness.FollowersOf(nodes, leader)[0]
	harness.WaitFor(t, 10*time.Second, "the follower to apply the token", func() bool {
		return f.Node.State().AppliedIndex() >= app.Index
	})
	r := sendJSON(t, http.MethodPost, f.URL+"/v1/counters/fwd.1/next", "", bearer(app.Secret)...)
	wantOK(t, r, http.StatusOK)
	if r.header.Get(httpapi.HeaderForwardedBy) != "" {
		t.Fatalf("the client saw the forwarding header: %v", r.header)
	}
	checkError(t, sendJSON(t, http.MethodPost, f.URL+"/v1/counters/other/next", "", bearer(app.Secret)...), http.StatusForbidden, api.CodeForbidden)
	checkError(t, sendJSON(t, http.MethodPost, f.URL+"/v1/counters/fwd.1/next", ""), http.StatusUnauthorized, api.CodeUnauthorized)
	if c := getCounterAs(t, leader.URL, "fwd.1", mgmt); c.Value != 1 {
		t.Fatalf("fwd.1 = %+v, want 1 (one forwarded mint)", c)
	}
}

// TestACLNewTokenNeverRefusedForALaggingFollower: right after a token is
// created on the leader, a follower that has not applied it yet sends the
// request on to the leader instead of refusing it; it never answers 401.
func TestACLNewTokenNeverRefusedForALaggingFollower(t *testing.T) {
	nodes := harness.StartClusterWith(t, 3, httpapi.Config{ACL: true})
	leader := harness.WaitLeader(t, nodes)
	mgmt := bootstrap(t, leader.URL).Secret
	followers := harness.FollowersOf(nodes, leader)
	for i := range 20 {
		tok := createToken(t, leader.URL, mgmt, `{"rules":[{"resource":"counters","prefix":"","access":"read"}]}`)
		f := followers[i%len(followers)]
		r := send(t, http.MethodGet, f.URL+"/v1/counters/x?consistency=stale", nil, bearer(tok.Secret)...)
		switch r.status {
		case http.StatusOK:
		case http.StatusTemporaryRedirect:
			wantOK(t, send(t, http.MethodGet, r.header.Get("Location"), nil, bearer(tok.Secret)...), http.StatusOK)
		default:
			t.Fatalf("a token the leader created was refused by %s: %s", f.Node.ID(), r)
		}
	}
}
