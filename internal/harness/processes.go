package harness

// The process backend's cluster: the nodes of one test, benchmark or
// campaign, started together and watched until they agree on a leader.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// ProcessSpec describes a cluster of countd processes.
type ProcessSpec struct {
	// Size is the number of nodes, n1…n<Size>.
	Size int
	// Bin is the countd binary (see Countd).
	Bin string
	// Dir holds node id's data dir Dir/id and log Dir/id.log.
	Dir string
	// Expect makes every node start with -bootstrap-expect Size and -join
	// with every node's gossip address; without it nodes get neither (a
	// single node then bootstraps itself).
	Expect bool
	// Flags are extra countd flags for every node; Env is added to every
	// node's environment.
	Flags []string
	Env   []string
	// Launch starts each process; nil means Direct.
	Launch Launcher
	// Addrs assigns node i (0-based) its addresses; nil means loopback
	// with a FreePort each.
	Addrs func(i int) (Addrs, error)
	// Secure, when set, runs every node with TLS, the gossip key and ACLs
	// (see Secure), and the harness's requests present its Auth.
	Secure *Secure
}

// Addrs are a node's listen (and advertised) addresses, host:port.
type Addrs struct {
	HTTP, Raft, Gossip string
	// RESP is the Redis-protocol address; empty serves none.
	RESP string
}

// LoopbackAddrs are four LoopbackAddr addresses: every node of a loopback
// cluster serves RESP too.
func LoopbackAddrs(int) (Addrs, error) {
	var a Addrs
	for _, s := range []*string{&a.HTTP, &a.Raft, &a.Gossip, &a.RESP} {
		addr, err := LoopbackAddr()
		if err != nil {
			return a, err
		}
		*s = addr
	}
	return a, nil
}

// ProcessCluster is a set of countd processes. Nodes may grow (AddNode)
// but are never removed: a node that left or was killed stays, stopped.
type ProcessCluster struct {
	Nodes []*Process
	spec  ProcessSpec
}

// NewProcessCluster prepares spec's nodes without starting them.
func NewProcessCluster(spec ProcessSpec) (*ProcessCluster, error) {
	if spec.Addrs == nil {
		spec.Addrs = LoopbackAddrs
	}
	c := &ProcessCluster{spec: spec}
	var gossip []string
	for range spec.Size {
		p, err := c.newNode()
		if err != nil {
			return nil, err
		}
		gossip = append(gossip, p.GossipAddr)
		c.Nodes = append(c.Nodes, p)
	}
	if spec.Expect {
		for _, p := range c.Nodes {
			p.Join, p.Expect = slices.Clone(gossip), spec.Size
		}
	}
	return c, nil
}

// newNode describes the next node from the spec. Every process node is
// described here, so a setting all test clusters need (TLS, a gossip key,
// a token) is added here once.
func (c *ProcessCluster) newNode() (*Process, error) {
	i := len(c.Nodes)
	id := fmt.Sprintf("n%d", i+1)
	a, err := c.spec.Addrs(i)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", id, err)
	}
	p := &Process{
		ID: id, HTTPAddr: a.HTTP, RESPAddr: a.RESP, RaftAddr: a.Raft, GossipAddr: a.Gossip,
		DataDir: filepath.Join(c.spec.Dir, id), LogPath: filepath.Join(c.spec.Dir, id+".log"),
		Flags: slices.Clone(c.spec.Flags), Env: c.spec.Env, Bin: c.spec.Bin, Launch: c.spec.Launch,
	}
	if s := c.spec.Secure; s != nil {
		flags, err := s.NodeFlags(id, hostIPs(a.HTTP, a.Raft, a.Gossip)...)
		if err != nil {
			return nil, err
		}
		p.Flags, p.Auth = append(flags, p.Flags...), s.Auth
	}
	return p, nil
}

// hostIPs are the IP hosts of the addresses, for a node's certificate.
func hostIPs(addrs ...string) []net.IP {
	var ips []net.IP
	for _, a := range addrs {
		if host, _, err := net.SplitHostPort(a); err == nil {
			if ip := net.ParseIP(host); ip != nil {
				ips = append(ips, ip)
			}
		}
	}
	return ips
}

// NewTestProcessCluster is NewProcessCluster for a test: Dir defaults to a
// tb.TempDir(), errors fail the test, and at the end every process is
// killed and, when the test failed, the tail of every node's log logged.
func NewTestProcessCluster(tb testing.TB, spec ProcessSpec) *ProcessCluster {
	tb.Helper()
	if spec.Dir == "" {
		spec.Dir = tb.TempDir()
	}
	c, err := NewProcessCluster(spec)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.KillAll(); err != nil {
			tb.Error(err)
		}
		if tb.Failed() {
			for _, p := range c.Nodes {
				tb.Logf("--- last lines of %s's log (%s) ---\n%s", p.ID, p.LogPath, p.LogTail(60))
			}
		}
	})
	return c
}

// AddNode prepares one more node that joins the running cluster through
// every existing node's gossip address (no -bootstrap-expect), with flags
// instead of the spec's. It does not start it.
func (c *ProcessCluster) AddNode(flags ...string) (*Process, error) {
	p, err := c.newNode()
	if err != nil {
		return nil, err
	}
	for _, o := range c.Nodes {
		p.Join = append(p.Join, o.GossipAddr)
	}
	p.Flags = flags
	c.Nodes = append(c.Nodes, p)
	return p, nil
}

// MustAddNode is AddNode, failing the test on error.
func (c *ProcessCluster) MustAddNode(tb testing.TB, flags ...string) *Process {
	tb.Helper()
	p, err := c.AddNode(flags...)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// StartAll starts every node that is not running, all at the same moment.
func (c *ProcessCluster) StartAll() error {
	gate := make(chan struct{})
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, p := range c.Nodes {
		if p.Running() {
			continue
		}
		wg.Go(func() {
			<-gate
			errs[i] = p.Start()
		})
	}
	close(gate)
	wg.Wait()
	return errors.Join(errs...)
}

// KillAll kills every node.
func (c *ProcessCluster) KillAll() error {
	var errs []error
	for _, p := range c.Nodes {
		errs = append(errs, p.Kill())
	}
	return errors.Join(errs...)
}

// TerminateAll sends SIGTERM to every running node at once and waits up
// to timeout for each to exit; a node still running then is killed. It
// reports nodes that had to be killed or exited with a non-zero code.
func (c *ProcessCluster) TerminateAll(timeout time.Duration) error {
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, p := range c.Nodes {
		if !p.Running() {
			continue
		}
		wg.Go(func() {
			switch code, took, exited := p.Terminate(timeout); {
			case !exited:
				errs[i] = fmt.Errorf("%s did not stop within %v of SIGTERM; killed", p.ID, took)
			case code != 0:
				errs[i] = fmt.Errorf("%s exited with code %d after SIGTERM", p.ID, code)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// URLs are the nodes' HTTP base URLs.
func (c *ProcessCluster) URLs() []string {
	out := make([]string, len(c.Nodes))
	for i, p := range c.Nodes {
		out[i] = p.URL()
	}
	return out
}

// ByID is the node with id, or nil.
func (c *ProcessCluster) ByID(id string) *Process {
	for _, p := range c.Nodes {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// Others is every node except skip.
func (c *ProcessCluster) Others(skip *Process) []*Process {
	var out []*Process
	for _, p := range c.Nodes {
		if p != skip {
			out = append(out, p)
		}
	}
	return out
}

// Running is the nodes whose processes are alive.
func (c *ProcessCluster) Running() []*Process {
	var out []*Process
	for _, p := range c.Nodes {
		if p.Running() {
			out = append(out, p)
		}
	}
	return out
}

// Exited names the nodes whose process has died, with how, for error
// messages.
func (c *ProcessCluster) Exited() []string {
	var out []string
	for _, p := range c.Nodes {
		if st := p.ExitState(); st != "" {
			out = append(out, fmt.Sprintf("%s (%s)", p.ID, st))
		}
	}
	return out
}

// PollProcesses asks the given nodes for their status at once; a node
// whose process has exited says so in Notes.
func PollProcesses(ctx context.Context, nodes []*Process) Poll {
	ids, urls := make([]string, len(nodes)), make([]string, len(nodes))
	var auth *Auth
	for i, p := range nodes {
		ids[i], urls[i], auth = p.ID, p.URL(), p.Auth
	}
	r := PollStatusAs(ctx, auth, ids, urls)
	r.Notes = make([]string, len(nodes))
	for i, p := range nodes {
		if st := p.ExitState(); st != "" {
			r.Notes[i] = "process exited: " + st
		}
	}
	return r
}

// WaitConverged polls until the given nodes agree on one leader with
// wantVoters voters (Poll.Converged) and returns the leader. It gives up
// when timeout passes or ctx ends, and at once when one of the nodes'
// processes has exited; the error then describes every node's last answer.
func (c *ProcessCluster) WaitConverged(ctx context.Context, nodes []*Process, wantVoters int, timeout time.Duration) (*Process, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		r := PollProcesses(ctx, nodes)
		if id, ok := r.Converged(wantVoters); ok {
			return c.ByID(id), nil
		}
		for i, p := range nodes {
			if r.Notes[i] != "" {
				return nil, fmt.Errorf("%s exited (%s) while waiting for the cluster to converge:%s", p.ID, p.ExitState(), r)
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("nodes did not agree on one leader with %d voters within %v:%s", wantVoters, timeout, r)
		case <-tick.C:
		}
	}
}

// MustWaitConverged is WaitConverged, failing the test on error.
func (c *ProcessCluster) MustWaitConverged(tb testing.TB, nodes []*Process, wantVoters int, timeout time.Duration) *Process {
	tb.Helper()
	l, err := c.WaitConverged(context.Background(), nodes, wantVoters, timeout)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// Leader asks every node once and returns the one the answering nodes
// most name leader, a node's claim to lead itself weighing most. Unlike
// WaitConverged it answers while nodes are down or disagree.
func (c *ProcessCluster) Leader(ctx context.Context) (*Process, error) {
	r := PollProcesses(ctx, c.Nodes)
	votes := map[string]int{}
	for i, st := range r.Statuses {
		if r.Errs[i] != nil {
			continue
		}
		if st.State == "Leader" {
			votes[st.NodeID] += len(c.Nodes)
		}
		if st.Leader != "" {
			votes[st.Leader]++
		}
	}
	best, bestVotes := "", 0
	for id, v := range votes {
		if v > bestVotes || (v == bestVotes && id < best) {
			best, bestVotes = id, v
		}
	}
	if p := c.ByID(best); p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("no leader:%s", r)
}
