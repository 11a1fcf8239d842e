package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/countd/countd/api"
)

// leaveAttemptTimeout bounds POST /v1/cluster/leave: the node answers once
// the leader has removed it, which can take a few seconds.
const leaveAttemptTimeout = 30 * time.Second

// LeaveCluster makes the node at node (a base URL such as http://10.0.0.1:8080)
// leave the cluster gracefully; it hands over leadership first if it leads,
// and its process exits afterwards. Unlike every other call it is sent to
// that node only, once: retrying on another node would make that one leave.
func (c *Client) LeaveCluster(ctx context.Context, node string) (*api.ClusterLeave, error) {
	base, err := normalize(node, c.scheme())
	if err != nil {
		return nil, err
	}
	resp, err := c.attempt(ctx, base, request{method: http.MethodPost, path: "/v1/cluster/leave", timeout: leaveAttemptTimeout})
	if err != nil {
		return nil, fmt.Errorf("leave %s: %w", base, err)
	}
	if resp.status != http.StatusOK {
		return nil, errorFrom(resp)
	}
	var out api.ClusterLeave
	if err := json.Unmarshal(resp.body, &out); err != nil {
		return nil, fmt.Errorf("decode response from %s: %w", base, err)
	}
	return &out, nil
}

// TransferLeader hands leadership to the voter named to, or to the most
// up-to-date other voter when to is empty, and names the new leader.
func (c *Client) TransferLeader(ctx context.Context, to string) (*api.TransferLeaderResult, error) {
	body, err := json.Marshal(api.TransferLeaderRequest{To: to})
	if err != nil {
		return nil, err
	}
	var out api.TransferLeaderResult
	err = c.call(ctx, request{method: http.MethodPost, path: "/v1/cluster/transfer-leader", body: body, write: true}, &out)
	if err != nil {
		return nil, err
	}
	if base, err := normalize(out.LeaderHTTP, c.scheme()); err == nil && out.LeaderHTTP != "" {
		c.setLeader(base) // the next write goes straight to the new leader
	}
	return &out, nil
}

// RemoveMember force-removes a dead member from the Raft configuration.
func (c *Client) RemoveMember(ctx context.Context, id string) (*api.MemberRemoved, error) {
	var out api.MemberRemoved
	err := c.call(ctx, request{method: http.MethodDelete, path: "/v1/cluster/members/" + url.PathEscape(id), write: true}, &out)
	return &out, err
}
