package client_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/countd/countd/client"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

// A worker keeps a session alive, takes a mutex on it, and works only
// while it holds the lock. The fencing token goes with every write to the
// guarded resource, so that the resource can refuse a holder whose lock
// has since passed to someone else.
func ExampleKeptSession_Lock() {
	addr, stop := exampleCluster()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := client.New(client.Config{Addrs: []string{addr}})
	if err != nil {
		panic(err)
	}
	// The client renews the session every TTL/3; if it cannot for a whole
	// TTL, the session and everything it holds are lost.
	s, err := c.KeepSession(ctx, 5*time.Second, "worker")
	if err != nil {
		panic(err)
	}

	l, err := s.Lock(ctx, "jobs-mutex", 1) // 1 holder at a time: a mutex
	if err != nil {
		panic(err)
	}
	fmt.Println("locked, token > 0:", l.FencingToken > 0)

	work := time.After(50 * time.Millisecond) // stands for the guarded work
	select {
	case <-l.Lost:
		// The session ended: another process may hold the lock now. Stop
		// at once and do not touch the guarded resource again.
		fmt.Println("lost the lock:", s.Err())
		return
	case <-work:
		fmt.Println("work done")
	}

	if err := l.Unlock(ctx); err != nil {
		panic(err)
	}
	fmt.Println("released")
	// Closing the session stops renewing it and ends it on the cluster,
	// which would also have released the lock.
	if err := s.Close(ctx); err != nil {
		panic(err)
	}
	fmt.Println("session closed")
	// Output:
	// locked, token > 0: true
	// work done
	// released
	// session closed
}

// Leader election: every candidate asks for the same lock, and its holder
// leads until it resigns (Unlock, or Close) or its session is lost. The
// next candidate then leads, with a larger fencing token.
func Example_leaderElection() {
	addr, stop := exampleCluster()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := client.New(client.Config{Addrs: []string{addr}})
	if err != nil {
		panic(err)
	}
	campaign := func(name string) (*client.KeptSession, *client.Lock) {
		s, err := c.KeepSession(ctx, 5*time.Second, name)
		if err != nil {
			panic(err)
		}
		l, err := s.Lock(ctx, "service-leader", 1) // waits until elected
		if err != nil {
			panic(err)
		}
		return s, l
	}

	a, leaderA := campaign("a")
	fmt.Println("a leads")

	elected := make(chan *client.Lock)
	var b *client.KeptSession
	go func() {
		var l *client.Lock
		b, l = campaign("b") // queues behind a
		elected <- l
	}()

	// a resigns: closing its session gives its place to b.
	if err := a.Close(ctx); err != nil {
		panic(err)
	}
	fmt.Println("a resigned")

	leaderB := <-elected
	fmt.Println("b leads, larger token:", leaderB.FencingToken > leaderA.FencingToken)
	if err := b.Close(ctx); err != nil {
		panic(err)
	}
	// Output:
	// a leads
	// a resigned
	// b leads, larger token: true
}

// exampleCluster starts a single in-memory node (like countd -dev) with its
// API on a loopback port, waits until it leads, and returns the API's
// address and a func that stops it. The harness's Start helpers take a
// testing.TB, which an example does not have, so this does the same with
// panics.
func exampleCluster() (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	node, err := cluster.Start(cluster.Config{
		NodeID:   "solo",
		InMemory: true,
		HTTPAddr: ln.Addr().String(),
		Logger:   harness.Logger(),
	})
	if err != nil {
		_ = ln.Close()
		panic(err)
	}
	srv := &http.Server{Handler: httpapi.New(node, httpapi.Config{Logger: harness.Logger()}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	stop = func() {
		_ = srv.Close()
		_ = node.Shutdown()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ok, _ := node.Ready(); ok {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := node.ReadBarrier(ctx, cluster.Linearizable)
			cancel()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			panic("the in-memory node did not lead within 10s")
		}
	}
	return "http://" + ln.Addr().String(), stop
}
