package respapi_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
	"github.com/countd/countd/internal/harness"
	"github.com/countd/countd/respapi"
)

// TestACL: with ACLs on, nothing but AUTH (and QUIT, HELLO) works before
// AUTH; an unknown token is refused; a token's rules apply to every key;
// a deleted token stops working on connections that used it.
func TestACL(t *testing.T) {
	const mgmt = "management-secret-0123456789"
	n := solo(t, respapi.Config{ACL: true}, cluster.Config{InitialManagementToken: fsm.HashSecret(mgmt)})
	// The new leader bootstraps ACLs with the token in a write of its own.
	harness.WaitFor(t, 10*time.Second, "the initial management token", func() bool {
		_, ok := n.Node.State().ACLLookup(fsm.HashSecret(mgmt))
		return ok
	})
	ctx := ctxFor(t, 30*time.Second)
	const reader = "reader-secret-0123456789"
	readerAccessor := api.NewAccessor()
	apply(t, n, fsm.ACLTokenCreate{Accessor: readerAccessor, SecretHash: fsm.HashSecret(reader),
		Rules: []fsm.ACLRule{{Resource: fsm.ResourceCounters, Prefix: "", Access: fsm.AccessRead}, {Resource: fsm.ResourceCounters, Prefix: "mine.", Access: fsm.AccessWrite}}})

	anon := plain(t, n.RESPAddr)
	for _, args := range [][]any{{"PING"}, {"INCR", "a"}, {"GET", "a"}, {"INFO"}, {"CLUSTER", "SLOTS"}} {
		if err := anon.Do(ctx, args...).Err(); !strings.HasPrefix(errString(err), "NOAUTH") {
			t.Errorf("%v before AUTH: %v, want NOAUTH", args, err)
		}
	}
	if err := anon.Do(ctx, "AUTH", "not-a-token-at-all-000").Err(); !strings.HasPrefix(errString(err), "WRONGPASS") {
		t.Errorf("AUTH with an unknown secret: %v, want WRONGPASS", err)
	}

	admin := plain(t, n.RESPAddr, func(o *redis.Options) { o.Password = mgmt })
	if v, err := admin.Incr(ctx, "a").Result(); err != nil || v != 1 {
		t.Fatalf("INCR with the management token: %d, %v", v, err)
	}
	// AUTH <user> <secret>: the user name is ignored.
	ro := plain(t, n.RESPAddr, func(o *redis.Options) { o.Username, o.Password = "anyone", reader })
	if v, err := ro.Get(ctx, "a").Result(); err != nil || v != "1" {
		t.Errorf("GET with a read token: %q, %v", v, err)
	}
	if err := ro.Incr(ctx, "a").Err(); errString(err) != `NOPERM this token lacks counters:write on "a"` {
		t.Errorf("INCR with a read token: %v, want NOPERM", err)
	}
	if err := ro.Del(ctx, "mine.x", "a").Err(); !strings.HasPrefix(errString(err), "NOPERM") {
		t.Errorf("DEL of a key the token may not write: %v, want NOPERM", err)
	}
	if v, err := ro.Incr(ctx, "mine.x").Result(); err != nil || v != 1 {
		t.Errorf("INCR under the token's write prefix: %d, %v", v, err)
	}
	if v, err := admin.Get(ctx, "a").Result(); err != nil || v != "1" {
		t.Errorf("a after the refused INCR: %q, %v; want 1 (a refusal changes nothing)", v, err)
	}

	apply(t, n, fsm.ACLTokenDelete{Accessor: readerAccessor})
	if err := ro.Get(ctx, "a").Err(); !strings.HasPrefix(errString(err), "NOAUTH") {
		t.Errorf("GET after the token was deleted: %v, want NOAUTH", err)
	}
}

// TestLimits: a command over the size limit, too many arguments, or
// garbage get an error and a closed connection; an idle connection and
// one trickling a command are closed; none of it stalls other clients.
func TestLimits(t *testing.T) {
	n := solo(t, respapi.Config{MaxBulk: 1024, MaxArgs: 8, IdleTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond}, cluster.Config{})
	ctx := ctxFor(t, 60*time.Second)
	good := plain(t, n.RESPAddr, func(o *redis.Options) { o.ConnMaxIdleTime = 100 * time.Millisecond })

	r := dialRaw(t, n.RESPAddr)
	r.send(cmd("SET", "k", strings.Repeat("1", 2000)))
	if got := r.closed(5 * time.Second); len(got) != 1 || !strings.HasPrefix(got[0], "-ERR too_large: ") {
		t.Errorf("a 2000-byte command with a 1024-byte limit: %q, want one too_large error", got)
	}

	// A declared bulk far past the limit is refused once the bytes sent
	// pass it, not buffered to its declared length.
	r = dialRaw(t, n.RESPAddr)
	r.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000000\r\n" + strings.Repeat("1", 70<<10))
	if got := r.closed(5 * time.Second); len(got) != 1 || !strings.HasPrefix(got[0], "-ERR too_large: ") {
		t.Errorf("a bulk declared at 1 GB: %q, want one too_large error", got)
	}

	r = dialRaw(t, n.RESPAddr)
	r.send(cmd("DEL", "a", "b", "c", "d", "e", "f", "g", "h", "i"))
	if l := r.line(); !strings.HasPrefix(l, "-ERR too_large: 9 arguments") {
		t.Errorf("DEL with 9 keys and a limit of 8: %q", l)
	}

	r = dialRaw(t, n.RESPAddr)
	r.send("*2\r\n$4\r\nINCR\r\n:1\r\n")
	if got := r.closed(5 * time.Second); len(got) != 1 || !strings.HasPrefix(got[0], "-ERR Protocol error: ") {
		t.Errorf("garbage: %q, want one protocol error", got)
	}

	// Idle, and a command that never finishes arriving: both closed.
	r = dialRaw(t, n.RESPAddr)
	r.closed(5 * time.Second)
	r = dialRaw(t, n.RESPAddr)
	r.send("*2\r\n$4\r\nINCR\r\n$1")
	r.closed(5 * time.Second)

	if v, err := good.Incr(ctx, "after").Result(); err != nil || v != 1 {
		t.Errorf("INCR on another connection after all that: %d, %v", v, err)
	}
	if v, err := good.Exists(ctx, "k").Result(); err != nil || v != 0 {
		t.Errorf("the refused SETs wrote k: EXISTS %d, %v", v, err)
	}
}

// TestPipelineBounded: a pipeline far longer than MaxPipeline, written
// while the answers come back, is answered whole and in order (the server
// works through it MaxPipeline commands at a time).
func TestPipelineBounded(t *testing.T) {
	n := solo(t, respapi.Config{MaxPipeline: 16}, cluster.Config{})
	r := dialRaw(t, n.RESPAddr)
	var b strings.Builder
	for range 2000 {
		b.WriteString(cmd("INCR", "p"))
	}
	go func() { _, _ = r.nc.Write([]byte(b.String())) }() // answered while still being written
	for i := 1; i <= 2000; i++ {
		if l := r.line(); l != fmt.Sprintf(":%d", i) {
			t.Fatalf("answer %d: %q", i, l)
		}
	}
}
