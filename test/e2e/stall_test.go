package e2e

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/internal/harness"
)

// TestPausedLeaderConfirmsThroughTheLog stops the leader's process with
// SIGSTOP for longer than half a heartbeat timeout (but less than the
// followers wait before an election, so it stays leader) and reads from
// it right after SIGCONT: the read's leadership check must go through the
// log, because a heartbeat reply from before the pause could otherwise
// confirm it (cluster/stall.go).
func TestPausedLeaderConfirmsThroughTheLog(t *testing.T) {
	const pause = 1700 * time.Millisecond // over the 1.5 s stall threshold
	c := formCluster(t, "-heartbeat-timeout", "3s", "-election-timeout", "3s", "-leader-lease-timeout", "3s")
	l := c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	if code := post(t, l.URL()+"/v1/counters/stall/next"); code != http.StatusOK {
		t.Fatalf("POST next: HTTP %d", code)
	}
	const metric = "countd_log_leadership_confirmations_total"
	before := harness.Scrape(t, l.URL()).MustValue(t, metric)
	status := func() *api.Cluster {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := l.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	term := status().Term

	if err := l.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause) // the fault's length, not a wait for a condition
	if err := l.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(l.URL() + "/v1/counters/stall")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	st := status()
	if st.State != "Leader" || st.Term != term {
		t.Skipf("the paused node lost its leadership anyway (state %s, term %d → %d); the machine stalled the followers too", st.State, term, st.Term)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("linearizable read after the pause: HTTP %d", resp.StatusCode)
	}
	if got := harness.Scrape(t, l.URL()).MustValue(t, metric); got < before+1 {
		t.Fatalf("%s went from %v to %v across a read right after a %v pause", metric, before, got, pause)
	}
}
