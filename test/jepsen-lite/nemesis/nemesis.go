// Package nemesis injects the faults of a jepsen-lite campaign on a seeded
// schedule: kill -9 and restart, SIGSTOP/SIGCONT pauses, network
// partitions and graceful leave/rejoin, alternating between the leader and
// other nodes. Every fault is recorded in the history from injection to
// heal; after each heal the nemesis waits for the cluster to converge
// before the next quiet period.
package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/countd/countd/internal/harness"
	"github.com/countd/countd/test/jepsen-lite/history"
	"github.com/countd/countd/test/jepsen-lite/netns"
)

// Fault kinds.
const (
	Kill      = "kill"
	Pause     = "pause"
	Partition = "partition"
	Leave     = "leave"
)

// Kinds are every fault kind, in the order the flag help lists them.
var Kinds = []string{Kill, Pause, Partition, Leave}

// Config tunes the nemesis.
type Config struct {
	// Kinds are the faults to inject, taken in a seeded random order,
	// each kind once per round.
	Kinds []string
	Seed  uint64
	// Quiet is the time between a recovered cluster and the next fault
	// (default 2s).
	Quiet time.Duration
	// Recover bounds the wait for the cluster to converge after a heal
	// (default 30s).
	Recover time.Duration
}

// Nemesis injects faults into a cluster.
type Nemesis struct {
	cfg   Config
	nodes *harness.ProcessCluster
	net   *netns.Network
	hist  *history.Writer
	log   *slog.Logger
	rng   *rand.Rand
	// turns counts the faults of each kind so far: even turns hit the
	// leader, odd ones another node (or, for partitions, split the
	// cluster at random).
	turns map[string]int
	// Problems are the faults that could not be injected or healed
	// cleanly and the recoveries that did not finish in time.
	Problems []string
}

// New prepares a nemesis.
func New(cfg Config, c *harness.ProcessCluster, net *netns.Network, hist *history.Writer, log *slog.Logger) *Nemesis {
	if cfg.Quiet <= 0 {
		cfg.Quiet = 2 * time.Second
	}
	if cfg.Recover <= 0 {
		cfg.Recover = 30 * time.Second
	}
	return &Nemesis{
		cfg: cfg, nodes: c, net: net, hist: hist, log: log,
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x6e656d)),
		turns: map[string]int{},
	}
}

// Run injects faults until ctx ends, then heals the one in progress.
func (n *Nemesis) Run(ctx context.Context) {
	if len(n.cfg.Kinds) == 0 {
		<-ctx.Done()
		return
	}
	var round []string
	for {
		if !wait(ctx, n.cfg.Quiet) {
			return
		}
		if len(round) == 0 {
			round = append([]string(nil), n.cfg.Kinds...)
			n.rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		}
		kind := round[0]
		round = round[1:]
		n.inject(ctx, kind)
		n.turns[kind]++
		if _, err := n.converge(context.WithoutCancel(ctx)); err != nil {
			n.problem("after %s: %v", kind, err)
		}
	}
}

// wait waits d or until ctx ends, and reports whether d passed. Faults are
// held for a time on purpose: this is the schedule, not a synchronisation.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (n *Nemesis) hold(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(n.rng.Int64N(int64(hi-lo)+1))
}

// converge waits for every node to be a voter of one leader again.
func (n *Nemesis) converge(ctx context.Context) (*harness.Process, error) {
	return n.nodes.WaitConverged(ctx, n.nodes.Nodes, len(n.nodes.Nodes), n.cfg.Recover)
}

func (n *Nemesis) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	n.Problems = append(n.Problems, msg)
	n.log.Warn("nemesis problem", "problem", msg)
}

// target picks the node a fault hits: the leader on even turns, another
// node at random on odd ones.
func (n *Nemesis) target(ctx context.Context, kind string) (*harness.Process, bool, error) {
	leader, err := n.nodes.Leader(ctx)
	if err != nil {
		return nil, false, err
	}
	if n.turns[kind]%2 == 0 {
		return leader, true, nil
	}
	others := n.nodes.Others(leader)
	return others[n.rng.IntN(len(others))], false, nil
}

func (n *Nemesis) inject(ctx context.Context, kind string) {
	// The heal must happen even when the campaign is ending.
	bg := context.WithoutCancel(ctx)
	var err error
	switch kind {
	case Kill:
		err = n.kill(ctx, bg)
	case Pause:
		err = n.pause(ctx, bg)
	case Partition:
		err = n.partition(ctx, bg)
	case Leave:
		err = n.leave(ctx, bg)
	default:
		err = fmt.Errorf("unknown fault kind %q", kind)
	}
	if err != nil {
		n.problem("%s: %v", kind, err)
	}
}

func (n *Nemesis) kill(ctx, bg context.Context) error {
	node, leader, err := n.target(bg, Kill)
	if err != nil {
		return err
	}
	f := n.hist.FaultStart(history.Fault{Kind: Kill, Nodes: []string{node.ID}, Leader: leader, Detail: "kill -9, then restart"})
	n.log.Info("nemesis: kill -9", "node", node.ID, "leader", leader)
	if err := node.Kill(); err != nil {
		f.End(err)
		return err
	}
	wait(ctx, n.hold(time.Second, 3*time.Second))
	err = node.Start()
	f.End(err)
	n.log.Info("nemesis: restarted", "node", node.ID, "error", err)
	return err
}

func (n *Nemesis) pause(ctx, bg context.Context) error {
	node, leader, err := n.target(bg, Pause)
	if err != nil {
		return err
	}
	d := n.hold(2*time.Second, 4*time.Second)
	f := n.hist.FaultStart(history.Fault{Kind: Pause, Nodes: []string{node.ID}, Leader: leader, Detail: "SIGSTOP for " + d.Round(time.Millisecond).String()})
	n.log.Info("nemesis: SIGSTOP", "node", node.ID, "leader", leader, "for", d)
	if err := node.Pause(); err != nil {
		f.End(err)
		return err
	}
	wait(ctx, d)
	err = node.Resume()
	f.End(err)
	n.log.Info("nemesis: SIGCONT", "node", node.ID, "error", err)
	return err
}

func (n *Nemesis) partition(ctx, bg context.Context) error {
	leader, err := n.nodes.Leader(bg)
	if err != nil {
		return err
	}
	idx := map[*harness.Process]int{}
	for i, x := range n.nodes.Nodes {
		idx[x] = i
	}
	var minority, majority []int
	isolateLeader := n.turns[Partition]%2 == 0
	if isolateLeader {
		minority = []int{idx[leader]}
	} else {
		perm := n.rng.Perm(len(n.nodes.Nodes))
		minority = perm[:len(perm)/2]
	}
	hitsLeader := false
	var names []string
	for i := range n.nodes.Nodes {
		in := false
		for _, m := range minority {
			in = in || m == i
		}
		if in {
			names = append(names, n.nodes.Nodes[i].ID)
			hitsLeader = hitsLeader || n.nodes.Nodes[i] == leader
		} else {
			majority = append(majority, i)
		}
	}
	detail := "split: minority cut off from the majority"
	if isolateLeader {
		detail = "leader isolated from the majority"
	}
	f := n.hist.FaultStart(history.Fault{Kind: Partition, Nodes: names, Leader: hitsLeader, Detail: detail})
	n.log.Info("nemesis: partition", "minority", names, "leader", leader.ID)
	if err := n.net.Partition(bg, minority, majority); err != nil {
		f.End(errors.Join(err, n.net.Heal(bg)))
		return err
	}
	wait(ctx, n.hold(3*time.Second, 5*time.Second))
	err = n.net.Heal(bg)
	f.End(err)
	n.log.Info("nemesis: healed partition", "error", err)
	return err
}

func (n *Nemesis) leave(ctx, bg context.Context) error {
	node, leader, err := n.target(bg, Leave)
	if err != nil {
		return err
	}
	f := n.hist.FaultStart(history.Fault{Kind: Leave, Nodes: []string{node.ID}, Leader: leader, Detail: "POST /v1/cluster/leave, then restart with the same flags"})
	n.log.Info("nemesis: leave", "node", node.ID, "leader", leader)
	if _, err := node.Leave(bg); err != nil {
		if errors.Is(err, harness.ErrLeaveUnsupported) {
			f.Unsupported(err)
			n.log.Warn("nemesis: leave is not supported by this countd; skipped", "error", err)
			return nil
		}
		f.End(err)
		return err
	}
	code, err := node.Wait(30 * time.Second)
	if err == nil && code != 0 {
		err = fmt.Errorf("%s exited with code %d after leaving, want 0", node.ID, code)
	}
	if err != nil {
		// Leave the goroutine dump in the node's log: a node that does not
		// exit after leaving is a bug to diagnose, not just to kill.
		node.DumpAndKill()
	}
	wait(ctx, n.hold(time.Second, 2*time.Second))
	err = errors.Join(err, node.Start())
	f.End(err)
	n.log.Info("nemesis: rejoined", "node", node.ID, "error", err)
	return err
}

// HealAll ends every fault: it heals the network, continues paused nodes,
// starts stopped ones and waits for the cluster to converge.
func (n *Nemesis) HealAll(ctx context.Context) error {
	errs := []error{n.net.Heal(ctx)}
	for _, x := range n.nodes.Nodes {
		if x.Paused() {
			errs = append(errs, x.Resume())
		}
		if !x.Running() {
			errs = append(errs, x.Start())
		}
	}
	_, err := n.converge(ctx)
	return errors.Join(append(errs, err)...)
}
