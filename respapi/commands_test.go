package respapi_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
	"github.com/countd/countd/respapi"
)

// TestCounterCommands: every counter command against a real node through
// go-redis, with the answers a Redis user expects on a default counter, and
// the rule refusals as their error lines.
func TestCounterCommands(t *testing.T) {
	n := solo(t, respapi.Config{}, cluster.Config{})
	rdb := plain(t, n.RESPAddr)
	ctx := ctxFor(t, 30*time.Second)

	type step struct {
		args []any
		want any    // int64, string, nil (a nil reply) or []any
		err  string // the error line's start, when an error is wanted
	}
	apply(t, n, fsm.QueueJoin{ID: "q", ProcessID: "p"})
	for _, s := range []step{
		{args: []any{"GET", "a"}, want: nil},
		{args: []any{"INCR", "a"}, want: int64(1)},
		{args: []any{"INCR", "a"}, want: int64(2)},
		{args: []any{"INCRBY", "a", "10"}, want: int64(12)},
		{args: []any{"DECR", "a"}, want: int64(11)},
		{args: []any{"DECRBY", "a", "5"}, want: int64(6)},
		{args: []any{"GET", "a"}, want: "6"},
		{args: []any{"INCRBY", "fresh", "-3"}, want: int64(-3)},
		{args: []any{"DECR", "fresh2"}, want: int64(-1)},
		{args: []any{"SET", "b", "42"}, want: "OK"},
		{args: []any{"GET", "b"}, want: "42"},
		{args: []any{"EXISTS", "a", "b", "nope"}, want: int64(2)},
		{args: []any{"DEL", "a", "nope"}, want: int64(1)},
		{args: []any{"GET", "a"}, want: nil},
		{args: []any{"EXISTS", "a"}, want: int64(0)},

		{args: []any{"SET", "b", "x"}, err: "ERR value is not an integer or out of range"},
		{args: []any{"INCRBY", "b", "1.5"}, err: "ERR value is not an integer or out of range"},
		{args: []any{"DECRBY", "b", "-9223372036854775808"}, err: "ERR decrement would overflow"},
		{args: []any{"SET", "max", "9223372036854775807"}, want: "OK"},
		{args: []any{"INCR", "max"}, err: "ERR overflow: "},
		{args: []any{"INCRBY", "max", "1"}, err: "ERR overflow: "},
		{args: []any{"SET", "b", "1", "EX", "10"}, err: "ERR syntax error"},
		{args: []any{"INCR", "q"}, err: "WRONGTYPE "},
		{args: []any{"GET", "q"}, err: "WRONGTYPE "},
		{args: []any{"SET", "q", "1"}, err: "WRONGTYPE "},
		{args: []any{"DEL", "q"}, err: "WRONGTYPE "},
		{args: []any{"INCR", "bad/name"}, err: "ERR invalid_name: "},
		{args: []any{"GET", ""}, err: "ERR invalid_name: "},
		{args: []any{"INCR"}, err: "ERR wrong number of arguments for 'incr' command"},
		{args: []any{"GET", "a", "b"}, err: "ERR wrong number of arguments for 'get' command"},
		{args: []any{"HSET", "h", "f", "v"}, err: "ERR unknown command 'hset'"},
		{args: []any{"SELECT", "1"}, err: "ERR DB index is out of range"},
		{args: []any{"AUTH", "secret"}, err: "ERR AUTH <password> called without any password configured"},

		{args: []any{"PING"}, want: "PONG"},
		{args: []any{"PING", "hi"}, want: "hi"},
		{args: []any{"ECHO", "hello"}, want: "hello"},
		{args: []any{"SELECT", "0"}, want: "OK"},
		{args: []any{"CLIENT", "SETNAME", "minter"}, want: "OK"},
		{args: []any{"CLIENT", "GETNAME"}, want: "minter"},
		{args: []any{"CONFIG", "GET", "appendfsync"}, want: []any{"appendfsync", "always"}},
		{args: []any{"RAFTLEADER"}, want: n.RESPAddr},
		{args: []any{"RAFTPEERS"}, want: []any{n.RESPAddr, "Leader"}},
		{args: []any{"CLUSTER", "KEYSLOT", "somekey"}, want: int64(11058)},
		{args: []any{"CLUSTER", "KEYSLOT", "{user1000}.following"}, want: int64(3443)},
	} {
		got, err := rdb.Do(ctx, s.args...).Result()
		name := fmt.Sprint(s.args)
		switch {
		case s.err != "":
			if err == nil || !strings.HasPrefix(err.Error(), s.err) {
				t.Errorf("%s: got %v, %v; want the error %q…", name, got, err, s.err)
			}
		case s.want == nil:
			if !errors.Is(err, redis.Nil) {
				t.Errorf("%s: got %v, %v; want a nil reply", name, got, err)
			}
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case fmt.Sprint(got) != fmt.Sprint(s.want):
			t.Errorf("%s: got %v (%T), want %v", name, got, got, s.want)
		}
	}

	// A monotonic counter refuses to go down or away, as over HTTP.
	apply(t, n, fsm.CounterSet{ID: "mono", Value: ptr(int64(5)), Monotonic: ptr(true)})
	for _, args := range [][]any{{"DECR", "mono"}, {"SET", "mono", "1"}, {"DEL", "mono"}} {
		if err := rdb.Do(ctx, args...).Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR not_monotonic: ") {
			t.Errorf("%v on a monotonic counter: %v, want ERR not_monotonic", args, err)
		}
	}
	if v, err := rdb.Get(ctx, "mono").Result(); err != nil || v != "5" {
		t.Errorf("the monotonic counter after refusals: %q, %v; want 5", v, err)
	}
	// A DEL with one key it must refuse deletes none of the others.
	if err := rdb.Set(ctx, "plain", 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"mono", "q"} {
		if err := rdb.Del(ctx, "plain", bad).Err(); err == nil {
			t.Errorf("DEL plain %s: no error", bad)
		}
		if n, err := rdb.Exists(ctx, "plain").Result(); err != nil || n != 1 {
			t.Errorf("DEL plain %s was refused but deleted plain: EXISTS %d, %v", bad, n, err)
		}
	}

	// INCR is the counter's next: it honours increment and offset (a
	// ticket server's), and INCRBY adds regardless.
	apply(t, n, fsm.CounterSet{ID: "odd", Increment: ptr(int64(2)), Offset: ptr(int64(1))})
	for _, want := range []int64{1, 3, 5} {
		if v, err := rdb.Incr(ctx, "odd").Result(); err != nil || v != want {
			t.Fatalf("INCR odd: %d, %v; want %d", v, err, want)
		}
	}
}

// TestConnectionCommands: what clients and tools send to set up a
// connection gets the answer they can work with.
func TestConnectionCommands(t *testing.T) {
	n := solo(t, respapi.Config{}, cluster.Config{})
	rdb := plain(t, n.RESPAddr)
	ctx := ctxFor(t, 30*time.Second)

	info, err := rdb.Info(ctx, "replication").Result()
	if err != nil || !strings.Contains(info, "role:master") || !strings.Contains(info, "raft_state:Leader") {
		t.Errorf("INFO replication: %q, %v", info, err)
	}
	info, err = rdb.Info(ctx).Result()
	if err != nil || !strings.Contains(info, "redis_version:") || !strings.Contains(info, "# Replication") {
		t.Errorf("INFO: %q, %v", info, err)
	}
	cmds, err := rdb.Command(ctx).Result()
	if err != nil {
		t.Fatalf("COMMAND: %v", err)
	}
	if c := cmds["get"]; c == nil || !c.ReadOnly || c.FirstKeyPos != 1 {
		t.Errorf("COMMAND's get: %+v; want a read-only command with its key first", c)
	}
	if c := cmds["incr"]; c == nil || c.ReadOnly {
		t.Errorf("COMMAND's incr: %+v; want a write", c)
	}
	if id, err := rdb.ClientID(ctx).Result(); err != nil || id <= 0 {
		t.Errorf("CLIENT ID: %d, %v", id, err)
	}
	if err := rdb.Do(ctx, "HELLO", "3").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPROTO") {
		t.Errorf("HELLO 3: %v, want NOPROTO (RESP2 only)", err)
	}

	// QUIT answers and closes.
	r := dialRaw(t, n.RESPAddr)
	r.send(cmd("QUIT") + cmd("PING"))
	if got := r.closed(5 * time.Second); len(got) != 1 || got[0] != "+OK" {
		t.Errorf("QUIT then PING: read %q before the close, want only +OK", got)
	}
	// Inline commands, as typed into telnet, work as in Redis.
	r = dialRaw(t, n.RESPAddr)
	r.send("INCR inline\r\n")
	if l := r.line(); l != ":1" {
		t.Errorf("inline INCR: %q", l)
	}
}

// TestPipelineKeepsOrder: a pipeline's commands are answered in order and
// act in order, whether they go through the log together, mint from the
// leader's cache, or read in between.
func TestPipelineKeepsOrder(t *testing.T) {
	n := solo(t, respapi.Config{}, cluster.Config{})
	rdb := plain(t, n.RESPAddr)
	ctx := ctxFor(t, 60*time.Second)
	apply(t, n, fsm.CounterSet{ID: "cached", Cache: ptr(int64(100))})

	for _, key := range []string{"dense", "cached"} {
		pipe := rdb.Pipeline()
		var incrs []*redis.IntCmd
		var gets []*redis.StringCmd
		for i := range 300 {
			switch {
			case i == 150:
				pipe.Set(ctx, key, 1000, 0)
			case i%50 == 0:
				gets = append(gets, pipe.Get(ctx, key))
			default:
				incrs = append(incrs, pipe.Incr(ctx, key))
			}
		}
		// The first GET, before any INCR, answers nil: Exec reports it.
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("%s: pipeline: %v", key, err)
		}
		want := int64(1)
		for i, c := range incrs {
			if i == 147 { // the SET came after 147 INCRs
				want = 1001
			}
			if c.Val() != want {
				t.Fatalf("%s: INCR %d of the pipeline answered %d, want %d (a pipeline acts in order)", key, i, c.Val(), want)
			}
			want++
		}
		// dense was never written; cached was, by its configuration.
		if v, err := gets[0].Result(); (key == "dense") != errors.Is(err, redis.Nil) || (key == "cached" && v != "0") {
			t.Errorf("%s: GET before the first INCR: %q, %v", key, v, err)
		}
		for _, g := range gets[1:] {
			if g.Err() != nil {
				t.Errorf("%s: GET in the pipeline: %v", key, g.Err())
			}
		}
		// The GET at position 200 saw the SET (at 150) and the 49 INCRs
		// between them.
		if v := gets[3].Val(); v != "1049" {
			t.Errorf("%s: GET after the SET in the pipeline: %s, want 1049", key, v)
		}
	}
}

// TestConcurrentIncrUnique: many connections pipelining INCRs on dense
// and cached counters never get one value twice, and a later INCR on a
// connection always gets a larger value than its earlier ones.
func TestConcurrentIncrUnique(t *testing.T) {
	n := solo(t, respapi.Config{}, cluster.Config{})
	apply(t, n, fsm.CounterSet{ID: "cached", Cache: ptr(int64(64))})
	ctx := ctxFor(t, 60*time.Second)
	for _, key := range []string{"dense", "cached"} {
		var mu sync.Mutex
		seen := map[int64]bool{}
		var wg sync.WaitGroup
		for c := range 8 {
			rdb := plain(t, n.RESPAddr)
			wg.Go(func() {
				last := int64(0)
				for range 10 {
					pipe := rdb.Pipeline()
					cmds := make([]*redis.IntCmd, 20)
					for i := range cmds {
						cmds[i] = pipe.Incr(ctx, key)
					}
					if _, err := pipe.Exec(ctx); err != nil {
						t.Errorf("%s client %d: %v", key, c, err)
						return
					}
					mu.Lock()
					for _, cm := range cmds {
						v := cm.Val()
						if seen[v] {
							t.Errorf("%s: %d minted twice", key, v)
						}
						if v <= last {
							t.Errorf("%s client %d: %d after %d", key, c, v, last)
						}
						seen[v], last = true, v
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != 8*10*20 {
			t.Errorf("%s: %d distinct values, want %d", key, len(seen), 8*10*20)
		}
	}
}
