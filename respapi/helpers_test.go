package respapi_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
	"github.com/countd/countd/respapi"
)

// solo starts one in-memory node serving RESP with rc.
func solo(t testing.TB, rc respapi.Config, cfg cluster.Config) *harness.Node {
	t.Helper()
	if cfg.NodeID == "" {
		cfg.NodeID = "solo"
	}
	cfg.InMemory = true
	n := harness.StartRESP(t, cfg, httpapi.Config{ACL: rc.ACL}, &rc)
	harness.WaitFor(t, 10*time.Second, "the in-memory node to lead", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ok, _ := n.Node.Ready()
		return ok && n.Node.ReadBarrier(ctx, cluster.Linearizable) == nil
	})
	return n
}

// plain is a go-redis client of one node, without retries, so every
// error the node answers reaches the test.
func plain(t *testing.T, addr string, tweak ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: addr, MaxRetries: -1, Protocol: 2, DisableIdentity: true}
	for _, f := range tweak {
		f(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// rawConn is a connection that speaks RESP by hand, for what clients
// would refuse to send.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	rd *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, rd: bufio.NewReader(nc)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	_ = r.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.nc.Write([]byte(s)); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// line reads one reply line (without CRLF), or fails the test.
func (r *rawConn) line() string {
	r.t.Helper()
	l, err := r.readLine(10 * time.Second)
	if err != nil {
		r.t.Fatalf("read a reply: %v", err)
	}
	return l
}

func (r *rawConn) readLine(d time.Duration) (string, error) {
	_ = r.nc.SetReadDeadline(time.Now().Add(d))
	l, err := r.rd.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

// closed waits for the server to close the connection, reading anything
// it still sends, and returns what it read.
func (r *rawConn) closed(d time.Duration) []string {
	r.t.Helper()
	var got []string
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		l, err := r.readLine(time.Until(deadline))
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				break
			}
			return got
		}
		got = append(got, l)
	}
	r.t.Fatalf("the connection is still open after %s (read %q)", d, got)
	return nil
}

// cmd encodes a command as RESP.
func cmd(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// apply applies p on n, failing the test on any error.
func apply(t *testing.T, n *harness.Node, p fsm.Payload) fsm.Result {
	t.Helper()
	res, err := n.Node.Apply(ctxFor(t, 10*time.Second), fsm.Command{Payload: p})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("apply %T: %v", p, err)
	}
	return res
}

func ptr[T any](v T) *T { return &v }
