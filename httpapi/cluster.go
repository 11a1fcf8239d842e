package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
)

// leaveTimeout bounds how long POST /v1/cluster/leave waits to see the
// leader remove this node (Consul servers wait 5s too). The leader removes
// a member that left within a second or so, but the entry that removes it
// need not reach it: raft stops replicating to a removed server at once.
const leaveTimeout = 5 * time.Second

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, api.Health{Status: "ok"})
}

// readyz is 200 when the node knows a leader and has applied everything it
// knows to be committed; load balancers use it to skip nodes that would only
// redirect into an election or serve very stale reads.
func (s *Server) readyz(c echo.Context) error {
	if ok, reason := s.node.Ready(); !ok {
		return c.JSON(http.StatusServiceUnavailable, api.Health{Status: "unavailable", Reason: reason})
	}
	return c.JSON(http.StatusOK, api.Health{Status: "ok"})
}

func (s *Server) clusterStatus(c echo.Context) error {
	st := s.node.Status()
	setIndex(c, st.AppliedIndex)
	out := api.Cluster{
		Name: st.ClusterName, NodeID: st.NodeID, State: st.State,
		Leader: st.LeaderID, Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
		Members: make([]api.Member, len(st.Members)),
	}
	if st.LeaderHTTP != "" {
		out.LeaderHTTP = s.baseURL(st.LeaderHTTP)
	}
	for i, m := range st.Members {
		out.Members[i] = api.Member{
			ID: m.ID, HTTPAddr: m.HTTPAddr, RaftAddr: m.RaftAddr, GossipAddr: m.GossipAddr,
			Status: m.GossipStatus, Suffrage: m.Suffrage, Leader: m.Leader, LastContactMS: -1, Health: m.Health,
		}
		if m.LastContact >= 0 {
			out.Members[i].LastContactMS = m.LastContact.Milliseconds()
		}
	}
	return c.JSON(http.StatusOK, out)
}

// leave acts on this node, whichever it is: it is how an operator retires
// a node. The answer is written before the process is told to stop.
func (s *Server) leave(c echo.Context) error {
	// The leave goes on even if the caller hangs up: half a leave helps
	// nobody.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), leaveTimeout)
	defer cancel()
	res, err := s.node.Leave(ctx)
	if err != nil {
		return err
	}
	st := s.node.Status()
	setIndex(c, st.AppliedIndex)
	if err := c.JSON(http.StatusOK, api.ClusterLeave{NodeID: st.NodeID, TransferredLeadership: res.TransferredLeadership, Removed: res.Removed, Confirmed: res.Confirmed}); err != nil {
		return err
	}
	c.Response().Flush()
	if s.cfg.OnLeave != nil {
		go s.cfg.OnLeave()
	}
	return nil
}

// transferLeader runs on the leader; followers redirect like any write.
func (s *Server) transferLeader(c echo.Context) error {
	var req api.TransferLeaderRequest
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	if req.To != "" {
		if err := fsm.CheckName("to", req.To); err != nil {
			return err
		}
	}
	id, err := s.node.TransferLeadership(c.Request().Context(), req.To)
	if err != nil {
		return err
	}
	out := api.TransferLeaderResult{Leader: id}
	st := s.node.Status()
	setIndex(c, st.AppliedIndex)
	for _, m := range st.Members {
		if m.ID == id && m.HTTPAddr != "" {
			out.LeaderHTTP = s.baseURL(m.HTTPAddr)
		}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) removeMember(c echo.Context) error {
	id, err := nameParam(c, "id", "member id")
	if err != nil {
		return err
	}
	if err := s.node.RemoveMember(id); err != nil {
		return err
	}
	setIndex(c, s.node.Status().AppliedIndex)
	return c.JSON(http.StatusOK, api.MemberRemoved{ID: id, Removed: true})
}

// *cluster.Node must serve the API.
var _ Node = (*cluster.Node)(nil)
