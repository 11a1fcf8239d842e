package nodes

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/countd/countd/api"
)

// Cluster is the campaign's nodes.
type Cluster struct {
	Nodes []*Node
}

// ByID returns the node with id, or nil.
func (c *Cluster) ByID(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// URLs are the nodes' HTTP base URLs.
func (c *Cluster) URLs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.URL())
	}
	return out
}

// StartAll starts every node that is not running.
func (c *Cluster) StartAll() error {
	for _, n := range c.Nodes {
		if !n.Running() {
			if err := n.Start(); err != nil {
				return err
			}
		}
	}
	return nil
}

// KillAll kills every node.
func (c *Cluster) KillAll() {
	for _, n := range c.Nodes {
		_ = n.Kill()
	}
}

// poll asks every node for its status at once.
func (c *Cluster) poll(ctx context.Context) ([]*api.Cluster, []error) {
	sts := make([]*api.Cluster, len(c.Nodes))
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sts[i], errs[i] = n.Status(ctx)
		}()
	}
	wg.Wait()
	return sts, errs
}

// converged reports whether every node answers, all name the same leader
// and term, that node says it is the leader, and every node's Raft
// configuration has all nodes as voters.
func (c *Cluster) converged(sts []*api.Cluster, errs []error) (*Node, bool) {
	leader, term := "", uint64(0)
	leaders := 0
	for i, st := range sts {
		if errs[i] != nil || st.Leader == "" {
			return nil, false
		}
		voters := 0
		for _, m := range st.Members {
			if m.Suffrage == "voter" {
				voters++
			}
		}
		if voters != len(c.Nodes) {
			return nil, false
		}
		if i == 0 {
			leader, term = st.Leader, st.Term
		}
		if st.Leader != leader || st.Term != term {
			return nil, false
		}
		if st.State == "Leader" {
			leaders++
		}
	}
	return c.ByID(leader), leaders == 1
}

// WaitConverged polls until the whole cluster agrees on one leader with
// every node a voter, and returns the leader.
func (c *Cluster) WaitConverged(ctx context.Context, timeout time.Duration) (*Node, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		sts, errs := c.poll(ctx)
		if n, ok := c.converged(sts, errs); ok && n != nil {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the cluster did not converge within %v:%s", timeout, describe(c.Nodes, sts, errs))
		case <-tick.C:
		}
	}
}

// Leader returns the node that the live nodes' majority names leader and
// that says so itself.
func (c *Cluster) Leader(ctx context.Context) (*Node, error) {
	sts, errs := c.poll(ctx)
	votes := map[string]int{}
	for i, st := range sts {
		if errs[i] == nil && st.State == "Leader" {
			votes[st.NodeID] += len(c.Nodes) // a node's own claim counts most
		}
		if errs[i] == nil && st.Leader != "" {
			votes[st.Leader]++
		}
	}
	best, bestVotes := "", 0
	for id, v := range votes {
		if v > bestVotes {
			best, bestVotes = id, v
		}
	}
	if n := c.ByID(best); n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("no leader:%s", describe(c.Nodes, sts, errs))
}

func describe(nodes []*Node, sts []*api.Cluster, errs []error) string {
	var b strings.Builder
	for i, n := range nodes {
		if errs[i] != nil {
			fmt.Fprintf(&b, "\n  %s: %v", n.ID, errs[i])
			continue
		}
		st := sts[i]
		var ms []string
		for _, m := range st.Members {
			ms = append(ms, fmt.Sprintf("%s/%s/%s", m.ID, m.Suffrage, m.Status))
		}
		fmt.Fprintf(&b, "\n  %s: state=%s leader=%q term=%d members=[%s]", n.ID, st.State, st.Leader, st.Term, strings.Join(ms, " "))
	}
	return b.String()
}
