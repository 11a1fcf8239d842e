package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/internal/harness"
)

// TestClusterOperations drives leave, transfer-leader and member removal
// over HTTP on a real 3-node cluster.
func TestClusterOperations(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	leader := harness.WaitStable(t, nodes)
	followers := harness.FollowersOf(nodes, leader)

	// Leader-only operations redirect like writes.
	checkRedirect(t, sendJSON(t, http.MethodPost, followers[0].URL+"/v1/cluster/transfer-leader", ""), leader, "/v1/cluster/transfer-leader")
	checkRedirect(t, sendJSON(t, http.MethodDelete, followers[0].URL+"/v1/cluster/members/nobody", ""), leader, "/v1/cluster/members/nobody")

	for _, c := range []struct {
		method, path, body string
		status             int
		code               api.Code
	}{
		{http.MethodPost, "/v1/cluster/transfer-leader", `{"to":"nobody"}`, 404, api.CodeNotFound},
		{http.MethodPost, "/v1/cluster/transfer-leader", `{"to":"a b"}`, 400, api.CodeInvalidName},
		{http.MethodPost, "/v1/cluster/transfer-leader", `{"bogus":1}`, 400, api.CodeBadRequest},
		{http.MethodDelete, "/v1/cluster/members/nobody", "", 404, api.CodeNotFound},
		{http.MethodDelete, "/v1/cluster/members/" + followers[0].Node.ID(), "", 409, api.CodeConflict},
		{http.MethodDelete, "/v1/cluster/members/" + leader.Node.ID(), "", 409, api.CodeConflict},
	} {
		checkError(t, sendJSON(t, c.method, leader.URL+c.path, c.body), c.status, c.code)
	}

	to := followers[0]
	r := sendJSON(t, http.MethodPost, leader.URL+"/v1/cluster/transfer-leader", `{"to":"`+to.Node.ID()+`"}`)
	wantOK(t, r, 200)
	var tr api.TransferLeaderResult
	decodeStrict(t, r.body, &tr, "leader", "leader_http")
	if tr.Leader != to.Node.ID() || tr.LeaderHTTP != to.URL {
		t.Fatalf("transfer: %+v, want %s at %s", tr, to.Node.ID(), to.URL)
	}
	harness.WaitFor(t, 10*time.Second, "the new leader", func() bool { return harness.LeaderOf(nodes) == to })

	// The old leader, now a follower, leaves: it answers once the leader
	// has confirmed its removal.
	old := leader
	r = sendJSON(t, http.MethodPost, old.URL+"/v1/cluster/leave", "")
	wantOK(t, r, 200)
	var lv api.ClusterLeave
	decodeStrict(t, r.body, &lv, "node_id", "transferred_leadership", "removed", "confirmed")
	if lv.NodeID != old.Node.ID() || lv.TransferredLeadership || !lv.Removed || !lv.Confirmed {
		t.Fatalf("leave: %+v, want removed, as the leader confirmed, without a leadership transfer", lv)
	}
	r = send(t, http.MethodGet, old.URL+"/readyz", nil)
	var h api.Health
	if err := json.Unmarshal(r.body, &h); r.status != 503 || err != nil || h.Reason != "the node is leaving the cluster" {
		t.Errorf("readyz of a node that left: %s", r)
	}
	checkError(t, sendJSON(t, http.MethodPost, old.URL+"/v1/cluster/leave", ""), 409, api.CodeConflict)
	// The new leader lists it as left and out of the configuration.
	harness.WaitFor(t, 10*time.Second, "the leader to remove the node that left", func() bool {
		var st api.Cluster
		if err := json.Unmarshal(send(t, http.MethodGet, to.URL+"/v1/cluster", nil).body, &st); err != nil {
			return false
		}
		for _, m := range st.Members {
			if m.ID == old.Node.ID() {
				return m.Suffrage == "none" && m.Status == "left"
			}
		}
		return false
	})
}
