package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
)

// A Go program can run a countd node in-process and mint IDs without HTTP.
// Without Join, the node bootstraps a one-node cluster that others can join
// later.
func Example_embedded() {
	dir, err := os.MkdirTemp("", "countd-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	node, err := cluster.Start(cluster.Config{
		NodeID:     "n1",
		DataDir:    filepath.Join(dir, "n1"),
		HTTPAddr:   "127.0.0.1:8080", // advertised for redirects; this program serves no HTTP
		RaftAddr:   "127.0.0.1:0",
		GossipAddr: "127.0.0.1:0",
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	defer node.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.WaitLeader(ctx); err != nil {
		panic(err)
	}
	res, err := node.Apply(ctx, fsm.Command{Payload: fsm.CounterNext{ID: "orders", Count: 3}})
	if err != nil { // not leader, or outcome unknown: retry with an IdempotencyKey
		panic(err)
	}
	if res.Err != nil { // a rule refused it (overflow, wrong type, …)
		panic(res.Err)
	}
	m := res.Value.(*fsm.Mint)
	fmt.Println("minted", m.First, "to", m.Last)

	if err := node.ReadBarrier(ctx, cluster.Linearizable); err != nil {
		panic(err)
	}
	c, _, _ := node.State().Counter("orders")
	fmt.Println("orders is at", c.Value)
	// Output:
	// minted 1 to 3
	// orders is at 3
}
