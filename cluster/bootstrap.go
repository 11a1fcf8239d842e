package cluster

// Bootstrapping with -bootstrap-expect N. Two nodes that bootstrap different
// configurations can both elect a leader in term 1, so a node bootstraps only
// when it sees exactly N alive gossip members of its cluster, all advertising
// the same N and none holding Raft state, and has seen that same set for a
// stable window. Every one of them then bootstraps the identical, sorted
// server list, which is safe: identical configurations elect one leader.

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// bootstrapStableWindow is how long the same N members must be seen before
// bootstrapping, so a member that is still joining is not left out.
const bootstrapStableWindow = 500 * time.Millisecond

// bootstrapPlan decides, from the member table, whether to bootstrap now.
// It is a pure function of its inputs so the rule can be tested directly.
type bootstrapPlan struct {
	servers []raft.Server
	// wait explains why not (yet); empty when servers is the plan.
	wait string
	// existing is true when a member already has Raft state: the cluster
	// exists and this node must wait to be added instead.
	existing bool
	// refused is true when the members seen contradict the configuration
	// (more of them than expected, or a different expect): an operator
	// must act, so it is logged as an error rather than as progress.
	refused bool
}

func planBootstrap(self string, expect int, members []member) bootstrapPlan {
	var alive []member
	for _, m := range members {
		if m.status != statusAlive {
			continue
		}
		if m.meta.HasState && m.id != self {
			return bootstrapPlan{existing: true, wait: fmt.Sprintf("member %s already has raft state", m.id)}
		}
		if m.meta.Expect != expect {
			return bootstrapPlan{refused: true, wait: fmt.Sprintf("member %s expects %d nodes, this node expects %d; refusing to bootstrap until they agree", m.id, m.meta.Expect, expect)}
		}
		alive = append(alive, m)
	}
	if !slices.ContainsFunc(alive, func(m member) bool { return m.id == self }) {
		return bootstrapPlan{wait: "this node is not in its own member table yet"}
	}
	if len(alive) > expect {
		ids := make([]string, len(alive))
		for i, m := range alive {
			ids[i] = m.id
		}
		return bootstrapPlan{refused: true, wait: fmt.Sprintf("saw %d nodes (%s) but bootstrap-expect is %d; refusing to bootstrap", len(alive), strings.Join(ids, ", "), expect)}
	}
	if len(alive) < expect {
		return bootstrapPlan{wait: fmt.Sprintf("saw %d of %d nodes", len(alive), expect)}
	}
	// Every node must bootstrap the identical list, whatever order its
	// member table came in.
	servers := make([]raft.Server, len(alive))
	for i, m := range alive {
		servers[i] = raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.id), Address: raft.ServerAddress(m.meta.Raft)}
	}
	slices.SortFunc(servers, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return bootstrapPlan{servers: servers}
}

func (n *Node) bootstrapLoop() {
	var (
		candidate []raft.Server
		since     time.Time
		lastWait  string
	)
	n.every(100*time.Millisecond, func() bool {
		if n.hasRaftState() {
			n.logger.Info("received raft state from a leader; bootstrap not needed")
			return true
		}
		plan := planBootstrap(n.cfg.NodeID, n.cfg.BootstrapExpect, n.gossip.snapshot())
		if plan.existing {
			n.logger.Info("found an existing cluster; waiting to be added", "reason", plan.wait)
			return true
		}
		if plan.servers == nil {
			if plan.wait != lastWait {
				if plan.refused {
					n.logger.Error("not bootstrapping", "reason", plan.wait)
				} else {
					n.logger.Info("not bootstrapping yet", "reason", plan.wait)
				}
				lastWait = plan.wait
			}
			candidate = nil
			return false
		}
		if !slices.Equal(plan.servers, candidate) {
			candidate, since = plan.servers, time.Now()
			return false
		}
		if time.Since(since) < bootstrapStableWindow {
			return false
		}
		if err := n.bootstrap(candidate); err != nil {
			n.logger.Error("bootstrap failed", "error", err)
		}
		return true
	})
}
