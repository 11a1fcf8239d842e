package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/internal/harness"
)

// TestThreeNodesStartedTogetherFormOneCluster starts three nodes at the same
// moment with -bootstrap-expect 3, several times, and checks that every
// start yields exactly one cluster: one leader, one term, three voters. While
// the cluster forms it watches for a second leader in any term, or a leader
// whose configuration lacks a voter (a node that bootstrapped alone).
func TestThreeNodesStartedTogetherFormOneCluster(t *testing.T) {
	for round := 1; round <= 3; round++ {
		t.Run(fmt.Sprintf("formation-%d", round), func(t *testing.T) {
			formOneCluster(t, 0)
		})
	}
	// Staggered starts are where a bootstrap without a stable window would
	// go wrong: the first nodes see a partial member set for a while.
	t.Run("staggered-300ms", func(t *testing.T) { formOneCluster(t, 300*time.Millisecond) })
}

var bootstrapLine = regexp.MustCompile(`msg="bootstrapped cluster".*servers=("[^"]*"|\S+)`)

func formOneCluster(t *testing.T, stagger time.Duration) {
	c := newCluster(t, 3, true)
	start := time.Now()
	if stagger == 0 {
		if err := c.StartAll(); err != nil {
			t.Fatal(err)
		}
	} else {
		for i, n := range c.Nodes {
			if i > 0 {
				time.Sleep(stagger) // the scenario itself: operators start nodes one by one
			}
			n.MustStart(t)
		}
	}

	// Watch every node while the cluster forms, until all agree.
	leadersByTerm := map[uint64]map[string]bool{}
	var bad []string
	var (
		leader string
		final  harness.Poll
	)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := harness.PollProcesses(context.Background(), c.Nodes)
		sts, errs := r.Statuses, r.Errs
		for i, st := range sts {
			if errs[i] != nil || st.State != "Leader" {
				continue
			}
			if leadersByTerm[st.Term] == nil {
				leadersByTerm[st.Term] = map[string]bool{}
			}
			leadersByTerm[st.Term][st.NodeID] = true
			if v := harness.Voters(st); v != 3 {
				bad = append(bad, fmt.Sprintf("%s was leader in term %d with %d voters: %s", st.NodeID, st.Term, v, harness.Describe(st)))
			}
		}
		// The wait condition: all three name the same leader and have
		// learned the three-voter configuration (a follower may hear the
		// leader's first heartbeat a moment before the configuration entry
		// reaches it). The other properties are asserted on this snapshot.
		same := true
		for i := range c.Nodes {
			if errs[i] != nil || sts[i].Leader == "" || sts[i].Leader != sts[0].Leader || harness.Voters(sts[i]) != 3 {
				same = false
			}
		}
		if same {
			leader, final = sts[0].Leader, r
			break
		}
		for i, n := range c.Nodes {
			if r.Notes[i] != "" {
				t.Fatalf("%s exited during formation:%s", n.ID, r)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the three nodes did not agree on one leader with three voters within 30s (split brain?):%s", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	formed := time.Since(start)
	if formed > 5*time.Second {
		// Not a failure (a loaded host is slow), but worth a look.
		for _, n := range c.Nodes {
			t.Logf("slow formation (%v); %s's log so far:\n%s", formed.Round(time.Millisecond), n.ID, n.LogTail(40))
		}
	}

	sts, errs := final.Statuses, final.Errs
	leaders, term := 0, sts[0].Term
	for i, n := range c.Nodes {
		if errs[i] != nil {
			t.Fatalf("%s: %v", n.ID, errs[i])
		}
		st := sts[i]
		if st.State == "Leader" {
			leaders++
		}
		if st.Leader != leader {
			t.Errorf("%s reports leader %q, expected %q", n.ID, st.Leader, leader)
		}
		if st.Term != term {
			t.Errorf("%s reports term %d, %s reports term %d", n.ID, st.Term, c.Nodes[0].ID, term)
		}
		if v := harness.Voters(st); v != 3 {
			t.Errorf("%s's Raft configuration lists %d voters, want 3: %s", n.ID, v, harness.Describe(st))
		}
	}
	if leaders != 1 {
		t.Errorf("%d nodes say they are Leader, want exactly 1:%s", leaders, final)
	}
	for term, ids := range leadersByTerm {
		if len(ids) > 1 {
			t.Errorf("SPLIT BRAIN: several leaders in term %d: %v", term, ids)
		}
	}
	for _, b := range bad {
		t.Errorf("PARTIAL BOOTSTRAP (split-brain risk): %s", b)
	}

	// Every node that bootstrapped must have used the same three servers.
	var plans []string
	for _, n := range c.Nodes {
		b, err := os.ReadFile(n.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range bootstrapLine.FindAllStringSubmatch(string(b), -1) {
			plan := strings.Trim(m[1], `"`)
			plans = append(plans, n.ID+":"+plan)
			if len(strings.Fields(strings.Trim(plan, "[]"))) != 3 {
				t.Errorf("PARTIAL BOOTSTRAP (split-brain risk): %s bootstrapped with servers %s, want all three", n.ID, plan)
			}
		}
	}
	for _, p := range plans {
		if p[strings.Index(p, ":")+1:] != plans[0][strings.Index(plans[0], ":")+1:] {
			t.Errorf("nodes bootstrapped different configurations: %v", plans)
			break
		}
	}
	if len(plans) == 0 {
		t.Errorf("no node logged \"bootstrapped cluster\"")
	}

	// A minted ID through countctl works on the new cluster.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, countctlBin, "-a", urls(c), "-i", "ids", "--timeout", "20s", "-o", "text", "counter", "next").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("countctl counter next: %v: %s", err, stderr)
	}
	if got := strings.TrimSpace(string(out)); got != "1" {
		t.Errorf("first ID minted on a fresh cluster: got %q, want 1", got)
	}
	t.Logf("formed one cluster in %v: leader %s, term %d, bootstraps %v; countctl minted %s",
		formed.Round(time.Millisecond), leader, term, plans, strings.TrimSpace(string(out)))
	if err := c.KillAll(); err != nil {
		t.Fatal(err)
	}
}
