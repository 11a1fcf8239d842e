package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/fsm"
	"github.com/countd/countd/internal/harness"
)

// Shutting down under load must not strand a caller: hashicorp/raft can
// leave a future it accepted unanswered when it stops (a command still
// buffered for its leader loop or FSM goroutine), and a node that waited on
// such a future forever would hang Apply and Shutdown.
func TestShutdownWhileApplyingReturns(t *testing.T) {
	for round := 0; round < 8; round++ {
		t.Run(fmt.Sprintf("round-%d", round), func(t *testing.T) {
			n := startSolo(t).Node
			var wg sync.WaitGroup
			for g := 0; g < 32; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						_, err := n.Apply(context.Background(), fsm.Command{Payload: fsm.CounterNext{ID: "c", Count: 1}})
						if err != nil {
							return // every caller must get an answer once the node stops
						}
					}
				}()
			}
			harness.WaitFor(t, 5*time.Second, "some writes to be applied", func() bool { return n.State().AppliedIndex() > 50 })
			shutdown := make(chan error, 1)
			go func() { shutdown <- n.Shutdown() }()
			callers := make(chan struct{})
			go func() { wg.Wait(); close(callers) }()
			deadline := time.After(15 * time.Second)
			for shutdown != nil || callers != nil {
				select {
				case err := <-shutdown:
					if err != nil {
						t.Errorf("shutdown: %v", err)
					}
					shutdown = nil
				case <-callers:
					callers = nil
				case <-deadline:
					t.Fatalf("stuck 15s after shutdown began (shutdown returned: %t, all Apply calls returned: %t)", shutdown == nil, callers == nil)
				}
			}
		})
	}
}
