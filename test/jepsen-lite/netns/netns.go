// Package netns builds the private network a jepsen-lite campaign runs on:
// a hub namespace holding a bridge, and one namespace per node joined to
// the bridge by a veth pair, all on a /24 that exists only inside these
// namespaces. Nothing is configured in the root namespace. A partition is a
// set of blackhole routes inside the node namespaces, so packets between
// cut nodes really stop while the hub (where the clients run) still
// reaches every node.
//
// Everything is done by running the ip tool of iproute2, which needs root.
package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Prefix starts the name of every namespace this package creates.
const Prefix = "cjl-"

// Network is one campaign's namespaces.
type Network struct {
	// ID names the network: namespaces are ID-hub and ID-n<i>.
	ID string
	// Subnet is the third octet of 10.77.<Subnet>.0/24.
	Subnet int
	// Size is the number of node namespaces.
	Size int

	mu  sync.Mutex
	cut map[[2]int]bool // blackholes in place: {in node i, to node j}
}

// New describes the network of run id with size nodes. It creates
// nothing: Create does; an inner process re-executed in the hub uses New
// to name what the outer one created.
func New(id string, subnet, size int) *Network {
	return &Network{ID: id, Subnet: subnet, Size: size, cut: map[[2]int]bool{}}
}

// ForPID is the network a campaign run by process pid uses.
func ForPID(pid, size int) *Network {
	return New(fmt.Sprintf("%s%d", Prefix, pid), pid%250+1, size)
}

// Hub is the hub namespace's name.
func (n *Network) Hub() string { return n.ID + "-hub" }

// Node is node i's namespace name (0-based).
func (n *Network) Node(i int) string { return fmt.Sprintf("%s-n%d", n.ID, i+1) }

// HubIP is the hub's address on the bridge.
func (n *Network) HubIP() string { return fmt.Sprintf("10.77.%d.254", n.Subnet) }

// NodeIP is node i's address.
func (n *Network) NodeIP(i int) string { return fmt.Sprintf("10.77.%d.%d", n.Subnet, i+1) }

func (n *Network) namespaces() []string {
	ns := []string{n.Hub()}
	for i := range n.Size {
		ns = append(ns, n.Node(i))
	}
	return ns
}

// Create makes the namespaces, the bridge and the veth pairs. On error it
// removes whatever it made.
func (n *Network) Create(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Destroy())
		}
	}()
	for _, ns := range n.namespaces() {
		if err := ip(ctx, "netns", "add", ns); err != nil {
			return err
		}
		if err := ip(ctx, "-n", ns, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	hub := n.Hub()
	for _, args := range [][]string{
		{"-n", hub, "link", "add", "br0", "type", "bridge"},
		{"-n", hub, "addr", "add", n.HubIP() + "/24", "dev", "br0"},
		{"-n", hub, "link", "set", "br0", "up"},
	} {
		if err := ip(ctx, args...); err != nil {
			return err
		}
	}
	for i := range n.Size {
		// Both ends are created inside their namespaces, so no interface
		// name ever exists in the root namespace to clash with anything.
		port := fmt.Sprintf("v%d", i+1)
		node := n.Node(i)
		for _, args := range [][]string{
			{"link", "add", port, "netns", hub, "type", "veth", "peer", "name", "eth0", "netns", node},
			{"-n", hub, "link", "set", port, "master", "br0", "up"},
			{"-n", node, "addr", "add", n.NodeIP(i) + "/24", "dev", "eth0"},
			{"-n", node, "link", "set", "eth0", "up"},
		} {
			if err := ip(ctx, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// Partition cuts every node of one group off from every node of the
// others, in both directions. Groups not listed keep their links.
func (n *Network) Partition(ctx context.Context, groups ...[]int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for gi, g := range groups {
		for _, h := range groups[gi+1:] {
			for _, a := range g {
				for _, b := range h {
					for _, pair := range [][2]int{{a, b}, {b, a}} {
						if n.cut[pair] {
							continue
						}
						if err := ip(ctx, "-n", n.Node(pair[0]), "route", "add", "blackhole", n.NodeIP(pair[1])+"/32"); err != nil {
							return fmt.Errorf("cut %s from %s: %w", n.Node(pair[0]), n.NodeIP(pair[1]), err)
						}
						n.cut[pair] = true
					}
				}
			}
		}
	}
	return nil
}

// Heal removes every cut.
func (n *Network) Heal(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for pair := range n.cut {
		if err := ip(ctx, "-n", n.Node(pair[0]), "route", "del", "blackhole", n.NodeIP(pair[1])+"/32"); err != nil {
			errs = append(errs, fmt.Errorf("heal %s to %s: %w", n.Node(pair[0]), n.NodeIP(pair[1]), err))
			continue
		}
		delete(n.cut, pair)
	}
	return errors.Join(errs...)
}

// Destroy kills every process left in the namespaces and deletes them.
// Deleting a namespace deletes its veth ends and the bridge with it.
func (n *Network) Destroy() error {
	return destroy(n.namespaces())
}

func destroy(names []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, ns := range names {
		if !exists(ctx, ns) {
			continue
		}
		killAll(ctx, ns)
		if err := ip(ctx, "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killAll SIGKILLs every process in namespace ns (SIGCONT first would not
// matter: SIGKILL ends stopped processes too).
func killAll(ctx context.Context, ns string) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func exists(ctx context.Context, ns string) bool {
	for _, name := range list(ctx) {
		if name == ns {
			return true
		}
	}
	return false
}

// list returns the names of all network namespaces.
func list(ctx context.Context) []string {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	sort.Strings(names)
	return names
}

// CleanupStale deletes the namespaces of earlier campaigns whose process
// is gone (they crashed or were killed before cleaning up), with the
// processes still running in them.
func CleanupStale() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stale []string
	for _, name := range list(ctx) {
		rest, ok := strings.CutPrefix(name, Prefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || alive(pid) {
			continue
		}
		stale = append(stale, name)
	}
	return destroy(stale)
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
