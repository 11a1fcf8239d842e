package netns

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("COUNTD_REQUIRE_JEPSEN") == "1" {
		t.Fatal("network namespaces need root, and COUNTD_REQUIRE_JEPSEN=1 forbids skipping")
	}
	t.Skip("network namespaces need root")
}

func routes(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "route", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s route show: %v: %s", ns, err, out)
	}
	return string(out)
}

// TestPartitionAndHeal builds a real network, cuts it and heals it, and
// checks the routes the kernel holds at each step.
func TestPartitionAndHeal(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	// Named after this process, so a crashed test's leftovers are stale
	// for the next run's CleanupStale.
	n := New(Prefix+strconv.Itoa(os.Getpid())+"-t", os.Getpid()%250+1, 3)
	if err := n.Create(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Destroy(); err != nil {
			t.Error(err)
		}
	})
	if r := routes(t, n.Node(0)); !strings.Contains(r, "10.77.") || strings.Contains(r, "blackhole") {
		t.Fatalf("a fresh node has routes %q, want its /24 and no blackhole", r)
	}
	if err := n.Partition(ctx, []int{0}, []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]string{{n.NodeIP(1), n.NodeIP(2)}, {n.NodeIP(0)}, {n.NodeIP(0)}} {
		r := routes(t, n.Node(i))
		for _, ip := range want {
			if !strings.Contains(r, "blackhole "+ip) {
				t.Errorf("%s routes %q lack a blackhole to %s", n.Node(i), r, ip)
			}
		}
		if strings.Contains(r, "blackhole "+n.HubIP()) {
			t.Errorf("%s is cut off from the hub: %q", n.Node(i), r)
		}
	}
	if r := routes(t, n.Node(1)); strings.Contains(r, "blackhole "+n.NodeIP(2)) {
		t.Errorf("n2 and n3 are on the same side, yet %q", r)
	}
	if err := n.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if r := routes(t, n.Node(i)); strings.Contains(r, "blackhole") {
			t.Errorf("%s still has blackholes after heal: %q", n.Node(i), r)
		}
	}
}

// TestCleanupStale removes the namespaces of a run whose process is gone
// and leaves those of live runs alone.
func TestCleanupStale(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	// A pid that is not running: a finished child's.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := ForPID(cmd.Process.Pid, 1)
	live := New(Prefix+strconv.Itoa(os.Getpid())+"-live", 201, 1)
	for _, n := range []*Network{dead, live} {
		if err := n.Create(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Destroy() })
	}
	if err := CleanupStale(); err != nil {
		t.Fatal(err)
	}
	if exists(ctx, dead.Hub()) || exists(ctx, dead.Node(0)) {
		t.Errorf("namespaces of dead pid %d survived CleanupStale: %v", cmd.Process.Pid, list(ctx))
	}
	if !exists(ctx, live.Hub()) {
		t.Errorf("CleanupStale removed a live run's namespace: %v", list(ctx))
	}
}
