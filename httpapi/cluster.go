package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/countd/countd/api"
)

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
		out.LeaderHTTP = "http://" + st.LeaderHTTP
	}
	for i, m := range st.Members {
		out.Members[i] = api.Member{
			ID: m.ID, HTTPAddr: m.HTTPAddr, RaftAddr: m.RaftAddr, GossipAddr: m.GossipAddr,
			Status: m.GossipStatus, Suffrage: m.Suffrage, Leader: m.Leader, LastContactMS: -1,
		}
		if m.ID == st.NodeID && st.LastContact >= 0 {
			out.Members[i].LastContactMS = st.LastContact.Milliseconds()
		}
	}
	return c.JSON(http.StatusOK, out)
}
