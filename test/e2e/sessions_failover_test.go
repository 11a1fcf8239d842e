package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
	"github.com/countd/countd/internal/harness"
)

// ephemeralMember is one foreground `countctl queue -p P join
// --session-ttl D` process.
type ephemeralMember struct {
	process string
	proc    *harness.Child // watched once its ticket is read
	counter int64          // what it printed (-o text: its ticket's counter)
}

// startEphemeralMember starts process's join and waits for its ticket.
func startEphemeralMember(t *testing.T, c *harness.ProcessCluster, queue, process string, ttl time.Duration) *ephemeralMember {
	t.Helper()
	cmd, out := startCountctl(t, "-a", urls(c), "-i", queue, "queue", "-p", process, "join",
		"--session-ttl", ttl.String(), "-o", "text")
	line := make(chan string, 1)
	go func() {
		if out.Scan() {
			line <- out.Text()
		}
		close(line)
	}()
	m := &ephemeralMember{process: process}
	select {
	case l, ok := <-line:
		v, err := strconv.ParseInt(strings.TrimSpace(l), 10, 64)
		if !ok || err != nil {
			t.Fatalf("%s's join printed %q, want its counter", process, l)
		}
		m.counter = v
	case <-time.After(30 * time.Second):
		t.Fatalf("%s's join printed no ticket within 30s", process)
	}
	// Nothing more is read from its stdout, so Wait may close the pipe.
	m.proc = harness.WatchChild(cmd)
	// Runs before startCountctl's cleanup (LIFO), whose own Wait then
	// returns at once.
	t.Cleanup(func() { _ = m.proc.Kill(10 * time.Second) })
	return m
}

// sessionsByID reads every session (linearizable: the leader's view).
func sessionsByID(ctx context.Context, cl *client.Client) (map[string]api.Session, error) {
	out := make(map[string]api.Session)
	after := ""
	for {
		page, err := cl.SessionPage(ctx, after, 0)
		if err != nil {
			return nil, err
		}
		for _, s := range page.Sessions {
			out[s.ID] = s
		}
		if page.Next == nil {
			return out, nil
		}
		after = *page.Next
	}
}

// memberKey is what must not change about a member through a failover.
type memberKey struct {
	counter int64
	session string
}

// queueMembers is a queue's members by process ID.
func queueMembers(q *api.Queue) map[string]memberKey {
	out := make(map[string]memberKey, len(q.Members))
	for _, m := range q.Members {
		out[m.ProcessID] = memberKey{m.Counter, m.Session}
	}
	return out
}

// TestLeaderKillEndsNoRenewedSession checks SPEC §9's "a failover never
// ends a session that was being renewed" with real processes: four
// ephemeral members, held by `countctl queue join --session-ttl 3s`
// processes that renew every second, stay queued (same counters, same
// sessions, unchanged fencing token) through a kill -9 of the leader and
// for two TTLs after the new leader is ready, and their processes keep
// running. SIGINT then makes each leave.
func TestLeaderKillEndsNoRenewedSession(t *testing.T) {
	const (
		ttl     = 3 * time.Second
		queue   = "workers"
		members = 4
		window  = 2 * ttl
	)
	c := formCluster(t)
	cl := newClient(t, c)
	read := func(timeout time.Duration) (*api.Queue, map[string]api.Session, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		q, _, err := cl.Queue(ctx, queue)
		if err != nil {
			return nil, nil, fmt.Errorf("read queue %s: %w", queue, err)
		}
		ss, err := sessionsByID(ctx, cl)
		if err != nil {
			return nil, nil, fmt.Errorf("list sessions: %w", err)
		}
		return q, ss, nil
	}

	ms := make([]*ephemeralMember, members)
	for i := range ms {
		ms[i] = startEphemeralMember(t, c, queue, fmt.Sprintf("w%d", i+1), ttl)
	}
	var q0 *api.Queue
	harness.WaitFor(t, 20*time.Second, fmt.Sprintf("all %d members in %s", members, queue), func() bool {
		q, _, err := read(2 * time.Second)
		if err != nil || len(q.Members) != members {
			return false
		}
		q0 = q
		return true
	})
	want := queueMembers(q0)
	_, ss0, err := read(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		k, ok := want[m.process]
		switch {
		case !ok:
			t.Fatalf("%s is not in %s: %+v", m.process, queue, q0.Members)
		case k.counter != m.counter:
			t.Fatalf("%s printed counter %d but the queue shows %d", m.process, m.counter, k.counter)
		case k.session == "":
			t.Fatalf("%s joined %s without a session: %+v", m.process, queue, q0.Members)
		}
		if _, ok := ss0[k.session]; !ok {
			t.Fatalf("%s's session %s is not among the sessions %v", m.process, k.session, slices.Sorted(maps.Keys(ss0)))
		}
	}
	token0 := q0.FencingToken

	leader := c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	killAt := time.Now()
	leader.MustKill(t)
	// A killed node keeps its vote for the dead-node grace period.
	newLeader := c.MustWaitConverged(t, c.Others(leader), 3, 30*time.Second)
	failover := time.Since(killAt)

	// check compares one observation with the state before the kill.
	check := func(q *api.Queue, ss map[string]api.Session) error {
		if q.FencingToken != token0 {
			return fmt.Errorf("fencing token %d, was %d before the kill", q.FencingToken, token0)
		}
		if got := queueMembers(q); !maps.Equal(got, want) {
			return fmt.Errorf("members (process: {counter session}) %v, were %v before the kill", got, want)
		}
		for p, k := range want {
			if _, ok := ss[k.session]; !ok {
				return fmt.Errorf("%s's session %s has ended (sessions now: %v)", p, k.session, slices.Sorted(maps.Keys(ss)))
			}
		}
		for _, m := range ms {
			if m.proc.Exited() {
				return fmt.Errorf("%s's countctl exited (%v)", m.process, m.proc.Err())
			}
		}
		return nil
	}

	// The window starts at the first linearizable read the new leader
	// answers, which it does only once ready, i.e. after the moment from
	// which it gives every session a full TTL. For the whole window every
	// answered poll must see every member, session and process.
	var start, last time.Time
	harness.WaitFor(t, 20*time.Second, "a linearizable read from the new leader", func() bool {
		q, ss, err := read(2 * time.Second)
		if err != nil {
			return false
		}
		start, last = time.Now(), time.Now()
		if err := check(q, ss); err != nil {
			t.Fatalf("first read after the failover (%v after the kill): %v", start.Sub(killAt).Round(time.Millisecond), err)
		}
		return true
	})
	var polls, failed int
	var maxGap time.Duration
	var lastErr error
	var final map[string]api.Session
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < window {
		<-tick.C
		q, ss, err := read(2 * time.Second)
		if err != nil {
			failed++
			lastErr = err
			continue
		}
		now := time.Now()
		polls++
		maxGap = max(maxGap, now.Sub(last))
		last = now
		if err := check(q, ss); err != nil {
			t.Fatalf("%v after the new leader was ready (%v after the kill): %v",
				now.Sub(start).Round(time.Millisecond), now.Sub(killAt).Round(time.Millisecond), err)
		}
		final = ss
	}
	end := last
	if end.Sub(start) < window {
		t.Fatalf("the last answered poll was %v into the window of %v (%d polls failed, last error: %v)",
			end.Sub(start).Round(time.Millisecond), window, failed, lastErr)
	}
	if maxGap >= ttl {
		t.Errorf("%v passed between two answered polls, not less than the TTL %v (%d polls failed, last error: %v)",
			maxGap.Round(time.Millisecond), ttl, failed, lastErr)
	}
	// At the end a session that had not been renewed since the kill would
	// be past a TTL from the new leader's start; each must still have time.
	minLeft := time.Duration(1<<63 - 1)
	for p, k := range want {
		left := time.Duration(final[k.session].ExpiresInMs) * time.Millisecond
		if left <= 0 {
			t.Errorf("%s's session %s has %v left at the end of the window", p, k.session, left)
		}
		minLeft = min(minLeft, left)
	}
	t.Logf("kill -9 of leader %s: new leader %s agreed by the survivors %v later; first linearizable read %v after the kill",
		leader.ID, newLeader.ID, failover.Round(time.Millisecond), start.Sub(killAt).Round(time.Millisecond))
	t.Logf("window observed: %v from the new leader's first read (%v after the kill), TTL %v: %d polls answered, %d failed, longest gap %v; "+
		"%d members and sessions unchanged, fencing token %d unchanged, least time left on a session at the end %v",
		end.Sub(start).Round(time.Millisecond), end.Sub(killAt).Round(time.Millisecond), ttl, polls+1, failed, maxGap.Round(time.Millisecond),
		members, token0, minLeft)

	// SIGINT: each countctl leaves, ends its session and exits 0.
	stopAt := time.Now()
	for _, m := range ms {
		if err := m.proc.Signal(syscall.SIGINT); err != nil {
			t.Errorf("SIGINT to %s's countctl: %v", m.process, err)
		}
	}
	for _, m := range ms {
		select {
		case <-m.proc.Done():
			if err := m.proc.Err(); err != nil {
				t.Errorf("%s's countctl exited with %v after SIGINT, want 0", m.process, err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("%s's countctl still running 15s after SIGINT", m.process)
		}
	}
	var qEnd *api.Queue
	var ssEnd map[string]api.Session
	harness.WaitFor(t, 5*time.Second, fmt.Sprintf("%s to be empty and its members' sessions ended", queue), func() bool {
		q, ss, err := read(2 * time.Second)
		if err != nil || len(q.Members) != 0 {
			return false
		}
		qEnd, ssEnd = q, ss
		for _, k := range want {
			if _, ok := ss[k.session]; ok {
				return false
			}
		}
		return true
	})
	if qEnd.FencingToken != token0+members {
		t.Errorf("fencing token %d after the %d leaves, want %d", qEnd.FencingToken, members, token0+members)
	}
	t.Logf("SIGINT: all %d countctl processes left and exited 0; %s empty %v later, fencing token %d, %d sessions left",
		members, queue, time.Since(stopAt).Round(time.Millisecond), qEnd.FencingToken, len(ssEnd))
}
