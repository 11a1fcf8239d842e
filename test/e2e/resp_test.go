package e2e

// The Redis protocol (SPEC §10) on real countd processes: redis-cli and
// redis-benchmark from Debian's redis-tools, go-redis's ClusterClient
// through a kill -9 of the leader, TLS and ACLs, and a client that
// follows -TRY.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/countd/countd/internal/harness"
	"github.com/countd/countd/tlsutil"
)

// requireRedisTool returns the path of a redis-tools program (redis-cli,
// redis-benchmark), skipping the test when it is missing; with
// COUNTD_REQUIRE_REDIS=1, which `make test` sets (`make deps` installs
// redis-tools), a missing one fails instead.
func requireRedisTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed: %v (install the Debian package redis-tools)", name, err)
		if os.Getenv("COUNTD_REQUIRE_REDIS") == "1" {
			t.Fatal(msg + "; COUNTD_REQUIRE_REDIS=1 forbids skipping")
		}
		t.Skip(msg)
	}
	return path
}

// redisToolEnv is the environment without REDISCLI_* variables (a
// REDISCLI_AUTH of the user's would AUTH every command).
func redisToolEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REDISCLI_") {
			out = append(out, kv)
		}
	}
	return out
}

// runRedisTool runs a redis-tools program against a loopback address with
// stdin and returns its stdout and stderr. It fails the test when the
// program cannot run or takes longer than timeout; a non-zero exit is
// returned in code (redis-cli exits 0 after printing an error reply).
func runRedisTool(t *testing.T, timeout time.Duration, stdin string, bin string, addr string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("%q is not a loopback host:port", addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...)
	cmd.Env = redisToolEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v against %s did not finish within %v; stdout %q, stderr %q", bin, args, addr, timeout, out.String(), errb.String())
	}
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return out.String(), errb.String(), code
}

// respCommand encodes a command in RESP, as redis-cli --pipe wants it.
func respCommand(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// respClient is a go-redis client of one node without retries, so every
// answer reaches the test. countd answers HELLO with NOPROTO: Protocol 2
// and DisableIdentity keep go-redis on RESP2 and AUTH.
func respClient(t *testing.T, addr string, tweak ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	for _, f := range tweak {
		f(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// respAddrs are the cluster's RESP addresses.
func respAddrs(c *harness.ProcessCluster) []string {
	out := make([]string, len(c.Nodes))
	for i, p := range c.Nodes {
		out[i] = p.RESPAddr
	}
	return out
}

// errText is err's message, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// waitUntil polls cond every 50ms until it holds; after timeout it fails
// the test with what cond last reported.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last: %s)", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leadershipAnswer reports whether a node's answer says only that the
// leadership moved or is being decided: -TRY or -MOVED to a leader,
// -TRYAGAIN or -CLUSTERDOWN during an election, or unknown_result for a
// write caught by a leadership change.
func leadershipAnswer(s string) bool {
	s = strings.TrimSpace(s)
	for _, p := range []string{"TRY ", "MOVED ", "TRYAGAIN", "CLUSTERDOWN"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return strings.Contains(s, "unknown_result")
}

// respLeader waits until the nodes agree on a leader (over HTTP) and every
// node answers RAFTLEADER with its RESP address, so that their -TRY and
// -MOVED name it; it returns the leader and its term. tweak configures the
// RAFTLEADER clients (TLS and a token on a secured cluster).
func respLeader(t *testing.T, c *harness.ProcessCluster, tweak ...func(*redis.Options)) (*harness.Process, uint64) {
	t.Helper()
	clients := map[string]*redis.Client{}
	var leader *harness.Process
	var term uint64
	waitUntil(t, 60*time.Second, "every node to name the same RESP leader", func() (bool, string) {
		l, err := c.WaitConverged(context.Background(), c.Running(), 3, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := l.Status(ctx)
		if err != nil {
			return false, fmt.Sprintf("status of %s: %v", l.ID, err)
		}
		for _, n := range c.Running() {
			rdb := clients[n.ID]
			if rdb == nil {
				rdb = respClient(t, n.RESPAddr, tweak...)
				clients[n.ID] = rdb
			}
			if v, err := rdb.Do(ctx, "RAFTLEADER").Text(); err != nil || v != l.RESPAddr {
				return false, fmt.Sprintf("leader %s (%s); %s answers RAFTLEADER %q, %v", l.ID, l.RESPAddr, n.ID, v, err)
			}
		}
		leader, term = l, st.Term
		return true, ""
	})
	return leader, term
}

// underLeader runs step against the current RESP leader (respLeader). A
// step returns "" when it passed, or why a leadership change interrupted
// it (it saw a leadershipAnswer); it fails the test itself on anything
// else. An interrupted step counts only if an election really happened
// (the term grew); then it runs again, against the new leader, with the
// next attempt number (for fresh keys). On a loaded machine leadership
// may move at any time; this keeps the checks exact without flakes.
func underLeader(t *testing.T, c *harness.ProcessCluster, what string, step func(attempt int, leader *harness.Process) string, tweak ...func(*redis.Options)) *harness.Process {
	t.Helper()
	leader, term := respLeader(t, c, tweak...)
	for attempt := 1; ; attempt++ {
		why := step(attempt, leader)
		if why == "" {
			return leader
		}
		next, nextTerm := respLeader(t, c, tweak...)
		switch {
		case nextTerm <= term:
			t.Fatalf("%s: %s, yet the term is still %d (leader %s): no election explains it", what, why, nextTerm, next.ID)
		case attempt == 5:
			t.Fatalf("%s: interrupted by leadership changes 5 times; last: %s", what, why)
		}
		t.Logf("%s: attempt %d interrupted by a leadership change (%s); term %d→%d, leader %s→%s; again", what, attempt, why, term, nextTerm, leader.ID, next.ID)
		leader, term = next, nextTerm
	}
}

// TestRedisCLI proves that the stock Redis tools work against a real
// three-node cluster: redis-cli INCRs at the leader (1, then 2), a follower
// answers a write with "TRY <leader's RESP address>" and RAFTLEADER with
// that address, `redis-cli --pipe` pushes 1000 INCRs in one stream with no
// error and 1000 replies (and GET then reads 1000), and redis-benchmark's
// INCR test runs to completion with every INCR applied. A step that a
// leadership change interrupts is run again on fresh keys (underLeader).
func TestRedisCLI(t *testing.T) {
	cli := requireRedisTool(t, "redis-cli")
	bench := requireRedisTool(t, "redis-benchmark")
	c := formCluster(t)
	const d = 30 * time.Second

	underLeader(t, c, "redis-cli INCR at the leader", func(attempt int, leader *harness.Process) string {
		key := fmt.Sprintf("cli-%d", attempt)
		for want := 1; want <= 2; want++ {
			out, errOut, code := runRedisTool(t, d, "", cli, leader.RESPAddr, "INCR", key)
			if leadershipAnswer(out) {
				return fmt.Sprintf("INCR %s at %s: %q", key, leader.ID, strings.TrimSpace(out))
			}
			if strings.TrimSpace(out) != strconv.Itoa(want) || code != 0 {
				t.Fatalf("redis-cli INCR %s at the leader %s: exit %d, stdout %q, stderr %q; want %d", key, leader.ID, code, out, errOut, want)
			}
		}
		return ""
	})

	// Not on a tty, redis-cli prints an error reply as its bare text (no
	// "(error)" prefix) on stdout, and (7.0) exits 0.
	underLeader(t, c, "redis-cli at a follower", func(_ int, leader *harness.Process) string {
		follower := c.Others(leader)[0]
		out, errOut, code := runRedisTool(t, d, "", cli, follower.RESPAddr, "INCR", "cli-follower")
		if got := strings.TrimSpace(out); got != "TRY "+leader.RESPAddr {
			if leadershipAnswer(got) {
				return fmt.Sprintf("INCR at follower %s: %q", follower.ID, got)
			}
			t.Fatalf("redis-cli INCR at follower %s: exit %d, stdout %q, stderr %q; want TRY %s", follower.ID, code, out, errOut, leader.RESPAddr)
		}
		out, errOut, code = runRedisTool(t, d, "", cli, follower.RESPAddr, "RAFTLEADER")
		if got := strings.TrimSpace(out); got != leader.RESPAddr || code != 0 {
			if strings.Count(got, ":") == 1 || leadershipAnswer(got) {
				return fmt.Sprintf("RAFTLEADER at follower %s: %q", follower.ID, got)
			}
			t.Fatalf("redis-cli RAFTLEADER at follower %s: exit %d, stdout %q, stderr %q; want %s", follower.ID, code, out, errOut, leader.RESPAddr)
		}
		return ""
	})

	// --pipe: 1000 INCRs in one stream, answered in order.
	const piped = 1000
	underLeader(t, c, "redis-cli --pipe", func(attempt int, leader *harness.Process) string {
		key := fmt.Sprintf("piped-%d", attempt)
		out, errOut, code := runRedisTool(t, d, strings.Repeat(respCommand("INCR", key), piped), cli, leader.RESPAddr, "--pipe")
		if summary := fmt.Sprintf("errors: 0, replies: %d", piped); code != 0 || !strings.Contains(out, summary) {
			// --pipe prints each error reply on stderr.
			if errLines := strings.Split(strings.TrimSpace(errOut), "\n"); code != 0 && leadershipAnswer(errLines[0]) && leadershipAnswer(errLines[len(errLines)-1]) {
				return fmt.Sprintf("--pipe to %s: %d error lines, such as %q", leader.ID, len(errLines), errLines[0])
			}
			t.Fatalf("redis-cli --pipe of %d INCRs to %s: exit %d, stdout %q, stderr %q; want %q", piped, leader.ID, code, out, errOut, summary)
		}
		out, errOut, _ = runRedisTool(t, d, "", cli, leader.RESPAddr, "GET", key)
		if got := strings.TrimSpace(out); got != strconv.Itoa(piped) {
			if leadershipAnswer(got) {
				return fmt.Sprintf("GET %s at %s: %q", key, leader.ID, got)
			}
			t.Fatalf("redis-cli GET %s after --pipe: stdout %q, stderr %q; want %d", key, out, errOut, piped)
		}
		return ""
	})

	// redis-benchmark -t incr INCRs the key counter:__rand_int__ (without
	// -r, literally), so the counter must move by every request.
	const requests, benchKey = 2000, "counter:__rand_int__"
	underLeader(t, c, "redis-benchmark -t incr", func(_ int, leader *harness.Process) string {
		value := func() (int64, string) {
			out, errOut, _ := runRedisTool(t, d, "", cli, leader.RESPAddr, "GET", benchKey)
			got := strings.TrimSpace(out)
			if got == "" {
				return 0, "" // never written: nil
			}
			if leadershipAnswer(got) {
				return 0, fmt.Sprintf("GET %s at %s: %q", benchKey, leader.ID, got)
			}
			v, err := strconv.ParseInt(got, 10, 64)
			if err != nil {
				t.Fatalf("redis-cli GET %s: stdout %q, stderr %q", benchKey, out, errOut)
			}
			return v, ""
		}
		before, why := value()
		if why != "" {
			return why
		}
		start := time.Now()
		out, errOut, code := runRedisTool(t, 2*time.Minute, "", bench, leader.RESPAddr, "-t", "incr", "-n", strconv.Itoa(requests), "-c", "8", "-q")
		if code != 0 || !strings.Contains(out, "requests per second") || strings.Contains(out+errOut, "Error") {
			if msg, ok := strings.CutPrefix(strings.TrimSpace(errOut), "Error from server: "); ok && leadershipAnswer(msg) {
				return fmt.Sprintf("redis-benchmark against %s: %q", leader.ID, strings.TrimSpace(errOut))
			}
			t.Fatalf("redis-benchmark -t incr against %s: exit %d, stdout %q, stderr %q", leader.ID, code, out, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\r")
		t.Logf("redis-benchmark -t incr -n %d -c 8 -q against %s (%v): %s", requests, leader.ID, time.Since(start).Round(time.Millisecond), strings.TrimSpace(lines[len(lines)-1]))
		after, why := value()
		if why != "" {
			return why
		}
		if after != before+requests {
			t.Fatalf("GET %s after redis-benchmark: %d, want %d+%d", benchKey, after, before, requests)
		}
		return ""
	})
}

// goRedisLog takes go-redis's log lines (refused dials to the killed
// node) while a test runs, to be summed up in the test's log; afterwards
// it writes them to stderr, as go-redis does by default.
type goRedisLog struct {
	mu    sync.Mutex
	lines []string
	done  bool
}

func (l *goRedisLog) Printf(_ context.Context, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		fmt.Fprintf(os.Stderr, "redis: "+format+"\n", v...)
		return
	}
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

// summary is the number of lines taken and the first and last of them.
func (l *goRedisLog) summary() (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch len(l.lines) {
	case 0:
		return 0, ""
	case 1:
		return 1, l.lines[0]
	}
	return len(l.lines), fmt.Sprintf("%q … %q", l.lines[0], l.lines[len(l.lines)-1])
}

// captureGoRedisLog makes go-redis log into a goRedisLog until the test
// ends.
func captureGoRedisLog(t *testing.T) *goRedisLog {
	lg := &goRedisLog{}
	redis.SetLogger(lg)
	t.Cleanup(func() {
		lg.mu.Lock()
		lg.done = true
		lg.mu.Unlock()
	})
	return lg
}

// mintRecord is what the minting goroutine of
// TestClusterClientSurvivesLeaderKill saw: every value with the time it
// arrived, and every error.
type mintRecord struct {
	mu     sync.Mutex
	values []stamped
	errs   []textLine
}

func (r *mintRecord) snapshot() ([]stamped, []textLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stamped(nil), r.values...), append([]textLine(nil), r.errs...)
}

// since is how many values arrived at or after at, and when the last one
// did (zero time when none has).
func (r *mintRecord) since(at time.Time) (n int, last time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.values) - 1; i >= 0 && !r.values[i].at.Before(at); i-- {
		n++
	}
	if len(r.values) > 0 {
		last = r.values[len(r.values)-1].at
	}
	return n, last
}

// mintLoop INCRs key through cc, one command at a time, until stop is
// closed, recording every answer in r.
func mintLoop(cc *redis.ClusterClient, key string, r *mintRecord, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		v, err := cc.Incr(ctx, key).Result()
		cancel()
		now := time.Now()
		r.mu.Lock()
		if err != nil {
			r.errs = append(r.errs, textLine{now, err.Error()})
		} else {
			r.values = append(r.values, stamped{now, v})
		}
		r.mu.Unlock()
		if err != nil {
			// A failed attempt already backed off inside go-redis; this
			// only keeps a dead cluster from being spun against.
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// waitMints waits until r holds need values at or after since, failing the
// test if the deadline passes or no value arrives for stallLimit.
func waitMints(t *testing.T, r *mintRecord, since time.Time, need int, timeout time.Duration, what string) {
	t.Helper()
	start := time.Now()
	waitUntil(t, timeout, fmt.Sprintf("%d INCRs %s", need, what), func() (bool, string) {
		n, last := r.since(since)
		if last.IsZero() {
			last = start
		}
		if n < need && time.Since(last) > stallLimit {
			_, errs := r.snapshot()
			var tail []string
			for _, e := range errs[max(0, len(errs)-5):] {
				tail = append(tail, e.at.Format("15:04:05.000")+" "+e.text)
			}
			t.Fatalf("%s: no INCR succeeded for %v (%d of %d; %d errors); last errors:\n%s", what, time.Since(last).Round(time.Millisecond), n, need, len(errs), strings.Join(tail, "\n"))
		}
		return n >= need, fmt.Sprintf("%d of %d", n, need)
	})
}

// TestClusterClientSurvivesLeaderKill proves that with -resp-redirect
// moved a stock go-redis ClusterClient, given the three RESP addresses,
// keeps minting through a kill -9 of the leader: it finds the new leader
// on its own, no value is ever returned twice, one sequential client sees
// strictly increasing values, the leader's linearizable GET afterwards
// covers the last value handed out, and the client keeps working once the
// killed node is back. Errors while there is no leader are allowed (before
// the kill only if an election happened anyway); they are counted and
// logged with the longest time between two successes. The client needs a
// short ClusterStateReloadInterval: see the comment at its options.
func TestClusterClientSurvivesLeaderKill(t *testing.T) {
	const key, phase = "ids", 200
	c := formCluster(t, "-resp-redirect", "moved")
	_, startTerm := respLeader(t, c)
	lg := captureGoRedisLog(t)

	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: respAddrs(c), Protocol: 2, DisableIdentity: true,
		MaxRedirects: 16, MaxRetries: 3, MinRetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond,
		// A refused dial fails at once: go to the next attempt (and the
		// next topology) rather than dial the dead node 5 times.
		DialerRetries: 1, DialTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		// go-redis re-reads CLUSTER SLOTS on MOVED, but not when the
		// master it knows stops answering: then only this interval
		// (60s by default) makes it look again.
		ClusterStateReloadInterval: time.Second,
	})
	t.Cleanup(func() { cc.Close() })

	rec := &mintRecord{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		mintLoop(cc, key, rec, stop)
	}()
	stopMinting := sync.OnceFunc(func() {
		close(stop)
		<-done
	})
	t.Cleanup(stopMinting)

	waitMints(t, rec, time.Time{}, phase, 60*time.Second, "before the kill")
	leader, killTerm := respLeader(t, c)
	before, errsBefore := rec.snapshot()
	killAt := time.Now()
	leader.MustKill(t)
	// A killed node stays a voter until the dead-node grace period ends.
	newLeader := c.MustWaitConverged(t, c.Others(leader), 3, 30*time.Second)
	electedAt := time.Now()
	var newTerm uint64
	if st, err := newLeader.Status(context.Background()); err == nil {
		newTerm = st.Term
	}
	waitMints(t, rec, electedAt, phase, 60*time.Second, "after the new leader "+newLeader.ID+" was up")
	stopMinting()
	values, errs := rec.snapshot()

	// One client, one command at a time: every value is new and larger
	// than the one before.
	seen := make(map[int64]bool, len(values))
	for i, s := range values {
		if seen[s.v] {
			t.Errorf("DUPLICATE: INCR %s returned %d twice (again at %s)", key, s.v, s.at.Format("15:04:05.000000"))
		}
		seen[s.v] = true
		if i > 0 && s.v <= values[i-1].v {
			t.Errorf("INCR %s returned %d at %s after %d", key, s.v, s.at.Format("15:04:05.000000"), values[i-1].v)
		}
	}
	// Before the kill, INCRs fail only if an election happened anyway (a
	// loaded machine can starve the leader's heartbeats).
	for _, e := range errsBefore {
		if killTerm == startTerm {
			t.Errorf("INCR failed at %s before the kill, with one leader throughout term %d: %s", e.at.Format("15:04:05.000"), startTerm, e.text)
		} else {
			t.Logf("before the kill, while leadership moved (term %d→%d), an INCR failed at %s: %s", startTerm, killTerm, e.at.Format("15:04:05.000"), e.text)
		}
	}
	errs = errs[len(errsBefore):]

	last := values[len(values)-1].v
	lastBefore := before[len(before)-1].v
	firstAfter := time.Duration(-1)
	var firstAfterValue int64
	for _, s := range values {
		if s.at.After(killAt) {
			firstAfter, firstAfterValue = s.at.Sub(killAt), s.v
			break
		}
	}
	gap, gapFrom := longestGap(times(values), values[0].at, values[len(values)-1].at)
	distinct := map[string]int{}
	for _, e := range errs {
		distinct[e.text]++
	}
	t.Logf("before the kill: %d INCRs through the ClusterClient, values %d..%d, %d errors; kill -9 of leader %s (RESP %s, term %d)",
		len(before), before[0].v, lastBefore, len(errsBefore), leader.ID, leader.RESPAddr, killTerm)
	t.Logf("new leader %s (RESP %s, term %d) agreed on by the survivors %v after the kill; first INCR answered +%v after the kill (value %d)",
		newLeader.ID, newLeader.RESPAddr, newTerm, electedAt.Sub(killAt).Round(time.Millisecond), firstAfter.Round(time.Millisecond), firstAfterValue)
	t.Logf("longest time between two successful INCRs: %v (from %s; kill at %s); %d INCRs failed during the failover (%d distinct messages)",
		gap.Round(time.Millisecond), gapFrom.Format("15:04:05.000"), killAt.Format("15:04:05.000"), len(errs), len(distinct))
	for msg, n := range distinct {
		t.Logf("  %d× %s", n, msg)
	}
	if n, sample := lg.summary(); n > 0 {
		t.Logf("go-redis logged %d lines meanwhile, such as: %s", n, sample)
	}
	t.Logf("after the kill: %d INCRs, values %d..%d; %d values in all, none repeated, strictly increasing; %d numbers never returned (INCRs applied whose answer was lost: unknown_result, or a go-redis retry)",
		len(values)-len(before), firstAfterValue, last, len(values), last-values[0].v+1-int64(len(values)))

	// The leader's linearizable GET covers every value handed out.
	underLeader(t, c, "GET "+key+" at the leader", func(_ int, l *harness.Process) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := respClient(t, l.RESPAddr).Get(ctx, key).Int64()
		if leadershipAnswer(errText(err)) {
			return fmt.Sprintf("GET %s at %s: %v", key, l.ID, err)
		}
		if err != nil {
			t.Fatalf("GET %s at the leader %s: %v", key, l.ID, err)
		}
		if got < last {
			t.Errorf("LOST WRITE: GET %s at the leader %s is %d, but INCR returned %d", key, l.ID, got, last)
		}
		t.Logf("linearizable GET %s at the leader %s: %d (last INCR answer %d)", key, l.ID, got, last)
		return ""
	})

	// The killed node restarts as a follower; the same ClusterClient goes
	// on minting.
	restartAt := time.Now()
	leader.MustStart(t)
	c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	respLeader(t, c)
	const more = 50
	prev, failed := last, 0
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for n := 0; n < more; {
		v, err := cc.Incr(ctx, key).Result()
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("only %d of %d INCRs succeeded after the restart of %s (%d failed; last: %v)", n, more, leader.ID, failed, err)
			}
			failed++
			t.Logf("INCR after the restart of %s failed: %v", leader.ID, err)
			continue
		}
		if v <= prev {
			t.Fatalf("after the restart of %s, INCR returned %d after %d", leader.ID, v, prev)
		}
		prev = v
		n++
	}
	t.Logf("%s restarted and rejoined; %d more INCRs through the same ClusterClient (%d failed), values up to %d, %v after the restart",
		leader.ID, more, failed, prev, time.Since(restartAt).Round(time.Millisecond))
}

// TestRESPTLSAndAuth proves that on a secured cluster (TLS, gossip key,
// ACLs) the RESP port is TLS-only and requires a token: go-redis with the
// cluster's CA and the management token as password INCRs at the leader,
// and so does redis-cli --tls --cacert -a; without a password INCR gets
// -NOAUTH (redis-cli too), with a wrong one -WRONGPASS; and plain TCP to
// the port gets no RESP answer.
func TestRESPTLSAndAuth(t *testing.T) {
	cli := requireRedisTool(t, "redis-cli")
	c, sec := secureCluster(t)
	pool, err := tlsutil.LoadCAPool(sec.CA)
	if err != nil {
		t.Fatal(err)
	}
	// Node certificates carry 127.0.0.1 as an IP SAN: like the harness's
	// HTTPS client, leave ServerName to the dialled host.
	withTLS := func(o *redis.Options) { o.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12} }
	withToken := func(o *redis.Options) { o.Password = sec.Token }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	leader := underLeader(t, c, "INCR over TLS with the token", func(attempt int, leader *harness.Process) string {
		key := fmt.Sprintf("tls-%d", attempt)
		rdb := respClient(t, leader.RESPAddr, withTLS, withToken)
		for want := int64(1); want <= 2; want++ {
			v, err := rdb.Incr(ctx, key).Result()
			if leadershipAnswer(errText(err)) {
				return fmt.Sprintf("INCR %s at %s: %v", key, leader.ID, err)
			}
			if err != nil || v != want {
				t.Fatalf("go-redis INCR %s over TLS with the management token at %s: %d, %v; want %d", key, leader.ID, v, err, want)
			}
		}
		out, errOut, code := runRedisTool(t, 30*time.Second, "", cli, leader.RESPAddr, "--tls", "--cacert", sec.CA, "-a", sec.Token, "--no-auth-warning", "INCR", key)
		if got := strings.TrimSpace(out); got != "3" || code != 0 {
			if leadershipAnswer(got) {
				return fmt.Sprintf("redis-cli INCR %s at %s: %q", key, leader.ID, got)
			}
			t.Fatalf("redis-cli --tls --cacert -a INCR %s at %s: exit %d, stdout %q, stderr %q; want 3", key, leader.ID, code, out, errOut)
		}
		return ""
	}, withTLS, withToken)

	// A connection is refused before anything but AUTH is looked at: these
	// answers do not depend on which node leads.
	if err := respClient(t, leader.RESPAddr, withTLS).Incr(ctx, "tls").Err(); !strings.HasPrefix(errText(err), "NOAUTH") {
		t.Errorf("INCR over TLS without a password: %v, want NOAUTH", err)
	}
	wrong := func(o *redis.Options) { o.Password = "not-" + sec.Token }
	if err := respClient(t, leader.RESPAddr, withTLS, wrong).Incr(ctx, "tls").Err(); !strings.HasPrefix(errText(err), "WRONGPASS") {
		t.Errorf("INCR over TLS with a wrong password: %v, want WRONGPASS", err)
	}
	out, errOut, _ := runRedisTool(t, 30*time.Second, "", cli, leader.RESPAddr, "--tls", "--cacert", sec.CA, "INCR", "tls")
	if !strings.HasPrefix(strings.TrimSpace(out), "NOAUTH") {
		t.Errorf("redis-cli --tls without -a: stdout %q, stderr %q; want NOAUTH", out, errOut)
	}

	// Plain TCP: a RESP PING gets no RESP answer; the TLS server drops the
	// connection (or at most answers a TLS alert).
	nc, err := net.DialTimeout("tcp", leader.RESPAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", leader.RESPAddr, err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte(respCommand("PING"))); err != nil {
		t.Fatalf("write a plain PING: %v", err)
	}
	got, err := io.ReadAll(nc)
	var ne net.Error
	switch {
	case len(got) > 0 && strings.ContainsAny(string(got[:1]), "+-:$*"):
		t.Errorf("plain TCP to the TLS-only RESP port was answered in RESP: %q", got)
	case err != nil && !(errors.As(err, &ne) && ne.Timeout()) && !strings.Contains(err.Error(), "reset"):
		t.Errorf("plain TCP to the TLS-only RESP port: read %q, %v", got, err)
	default:
		how := "EOF"
		if err != nil {
			how = err.Error()
		}
		t.Logf("plain TCP to the TLS-only RESP port: read %d bytes %q, then %s", len(got), got, how)
	}
}

// TestFollowerTryFollowedByClient proves SummitDB-style redirection on
// real processes: a plain go-redis client at a follower gets "TRY
// <leader's RESP address>" for INCR, and a client that follows TRY (as
// SummitDB's do) reconnects there, mints, and stays on the leader.
func TestFollowerTryFollowedByClient(t *testing.T) {
	c := formCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	underLeader(t, c, "following TRY", func(attempt int, leader *harness.Process) string {
		key := fmt.Sprintf("try-%d", attempt)
		follower := c.Others(leader)[0]
		if err := respClient(t, follower.RESPAddr).Incr(ctx, key).Err(); errText(err) != "TRY "+leader.RESPAddr {
			if leadershipAnswer(errText(err)) {
				return fmt.Sprintf("INCR at follower %s: %v", follower.ID, err)
			}
			t.Fatalf("INCR at follower %s: %v, want TRY %s", follower.ID, err, leader.RESPAddr)
		}

		clients := map[string]*redis.Client{}
		addr, hops := follower.RESPAddr, 0
		incr := func() (int64, error) {
			for range 5 {
				rdb := clients[addr]
				if rdb == nil {
					rdb = respClient(t, addr)
					clients[addr] = rdb
				}
				v, err := rdb.Incr(ctx, key).Result()
				if to, ok := strings.CutPrefix(errText(err), "TRY "); ok {
					addr, hops = to, hops+1
					continue
				}
				return v, err
			}
			return 0, errors.New("more than 5 TRY hops")
		}
		for want := int64(1); want <= 3; want++ {
			v, err := incr()
			if leadershipAnswer(errText(err)) || hops > 1 {
				return fmt.Sprintf("INCR %s following TRY: %v after %d hops", key, err, hops)
			}
			if err != nil || v != want {
				t.Fatalf("INCR %s following TRY from %s: %d, %v; want %d", key, follower.ID, v, err, want)
			}
		}
		if hops != 1 || addr != leader.RESPAddr {
			t.Fatalf("the TRY-following client hopped %d times and ended at %s; want one hop, to the leader %s", hops, addr, leader.RESPAddr)
		}
		return ""
	})
}
