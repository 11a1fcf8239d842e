// Package nodes describes the countd processes of a jepsen-lite campaign
// for internal/harness's process backend: each node runs inside its own
// network namespace, on that namespace's address. Everything the nemesis
// does to them (kill -9, SIGSTOP/SIGCONT, a graceful leave, restarts with
// the same identity, addresses, data dir and -join flags) is the harness's.
package nodes

import (
	"net"
	"os/exec"
	"strconv"

	"github.com/countd/countd/internal/harness"
	"github.com/countd/countd/test/jepsen-lite/netns"
)

// Ports every node uses on its own address.
const (
	HTTPPort   = 8080
	RaftPort   = 8300
	GossipPort = 8301
)

// New prepares the campaign's cluster without starting it: node i runs
// countd in nw's namespace i, bootstrapping with all the others, with its
// data dir and log under dir; with sec, in the production configuration
// (TLS, a gossip key, ACLs), otherwise with -insecure, since the nodes'
// addresses are not loopback.
func New(countd string, nw *netns.Network, dir string, sec *harness.Secure) (*harness.ProcessCluster, error) {
	var flags []string
	if sec == nil {
		flags = []string{"-insecure"}
	}
	c, err := harness.NewProcessCluster(harness.ProcessSpec{
		Size: nw.Size, Bin: countd, Dir: dir, Expect: true, Secure: sec, Flags: flags,
		Addrs: func(i int) (harness.Addrs, error) {
			ip := nw.NodeIP(i)
			return harness.Addrs{HTTP: hostPort(ip, HTTPPort), Raft: hostPort(ip, RaftPort), Gossip: hostPort(ip, GossipPort)}, nil
		},
	})
	if err != nil {
		return nil, err
	}
	for i, p := range c.Nodes {
		p.Launch = InNamespace(nw.Node(i))
	}
	return c, nil
}

// InNamespace launches countd inside network namespace ns. `ip netns exec`
// enters the namespace and execs countd in place, so the process signalled
// later is countd itself, and the harness's parent-death signal (the nodes
// die with the campaign, whatever kills it) survives the exec.
func InNamespace(ns string) harness.Launcher {
	return func(_ *harness.Process, bin string, args []string) *exec.Cmd {
		return exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	}
}

func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
