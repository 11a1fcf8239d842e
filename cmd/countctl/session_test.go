package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/client"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func TestSessionCommands(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	create := []string{"session", "create", "--ttl", "30s", "--name", "worker", "-o", "text"}
	r := ctl(t, n.URL, create...)
	wantSuccess(t, r, create)
	id := strings.TrimSpace(r.stdout)
	for _, args := range [][]string{{"session", "renew", id}, {"session", "get", id}} {
		r := ctl(t, n.URL, args...)
		wantSuccess(t, r, args)
		if !strings.Contains(r.stdout, `"name": "worker"`) {
			t.Errorf("countctl %q: %s", args, r.stdout)
		}
	}
	list := []string{"session", "list", "-o", "text"}
	if r := ctl(t, n.URL, list...); r.code != 0 || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "30s") {
		t.Errorf("countctl %q: %s", list, r)
	}
	rm := []string{"session", "rm", id}
	wantSuccess(t, ctl(t, n.URL, rm...), rm)
	renew := []string{"session", "renew", id}
	wantFailure(t, ctl(t, n.URL, renew...), 1, renew)
	for _, bad := range [][]string{{"session", "create"}, {"session", "create", "--ttl", "500ms"}, {"session", "renew"}} {
		wantFailure(t, ctl(t, n.URL, bad...), 2, bad)
	}
}

func TestQueueJoinWithSessionTTLHoldsThePlaceUntilSignalled(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	b := startCtl(ctx, "-a", n.URL, "-i", "q", "queue", "-p", "p1", "join", "--session-ttl", "3s", "-o", "text")
	// Joined, and countctl has printed the ticket: from here it only holds
	// the place (a signal during the join itself is a failed join).
	harness.WaitFor(t, 10*time.Second, "the ephemeral member's ticket", func() bool {
		return strings.TrimSpace(b.stdout.String()) == "1"
	})
	if r := ctl(t, n.URL, "-i", "q", "queue", "list"); r.code != 0 || !strings.Contains(r.stdout, `"session"`) {
		t.Fatalf("the member is not ephemeral: %s", r)
	}
	if r := ctl(t, n.URL, "-i", "q", "-o", "text", "queue", "list"); r.code != 0 || len(strings.Split(strings.TrimSpace(r.stdout), "\n")) != 2 {
		t.Fatalf("queue list -o text: %s", r)
	} else if f := strings.Fields(strings.Split(strings.TrimSpace(r.stdout), "\n")[1]); len(f) != 5 || f[2] != "p1" || len(f[4]) != 36 {
		t.Errorf("queue list -o text shows the member as %q; want its session ID last", f)
	}
	if r, done := b.exited(); done {
		t.Fatalf("countctl did not stay in the foreground: %s", r)
	}
	interrupt() // what SIGINT does to countctl's context
	r := b.exit(t, "join --session-ttl after SIGINT")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "1" {
		t.Fatalf("join --session-ttl: %s", r)
	}
	if q := ctl(t, n.URL, "-i", "q", "queue", "list"); q.code != 0 || strings.Contains(q.stdout, "p1") {
		t.Fatalf("the member is still queued after countctl left: %s", q.stdout)
	}
	bad := []string{"-i", "q", "queue", "-p", "p2", "join", "--session-ttl", "10ms"}
	wantFailure(t, ctl(t, n.URL, bad...), 2, bad)
}

// TestQueueJoinAfterACrashWaitsForTheEarlierSession: a join with
// --session-ttl soon after a crashed run finds the place held by that
// run's session, which is about to expire and take the place with it; it
// waits for it to end and joins in its own session, rather than print a
// ticket it will lose. A permanent member under the same process ID is
// refused and left alone.
func TestQueueJoinAfterACrashWaitsForTheEarlierSession(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	cl, err := client.New(client.Config{Addrs: []string{n.URL}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	crashed, err := cl.CreateSession(rctx, time.Second, "crashed-run")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Join(rctx, "q", "p1", nil, client.InSession(crashed.ID)); err != nil {
		t.Fatal(err)
	}

	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	b := startCtl(ctx, "-a", n.URL, "-i", "q", "queue", "-p", "p1", "join", "--session-ttl", "3s", "-o", "text")
	harness.WaitFor(t, 10*time.Second, "the new run's own ticket", func() bool {
		return strings.TrimSpace(b.stdout.String()) != ""
	})
	if !strings.Contains(b.stderr.String(), "of an earlier run; waiting") {
		t.Errorf("stderr: %q; want the wait explained", b.stderr.String())
	}
	tk, err := cl.QueueMember(rctx, "q", "p1")
	if err != nil || tk.Session == "" || tk.Session == crashed.ID {
		t.Fatalf("p1 after the rejoin: %+v, %v; want it held by the new run's session", tk, err)
	}
	if got := strings.TrimSpace(b.stdout.String()); got != strconv.FormatInt(tk.Counter, 10) {
		t.Errorf("countctl printed %q, the member's counter is %d", got, tk.Counter)
	}
	interrupt()
	if r := b.exit(t, "join --session-ttl after SIGINT"); r.code != 0 {
		t.Errorf("join --session-ttl: %s", r)
	}

	if _, err := cl.Join(rctx, "q", "p2", nil); err != nil {
		t.Fatal(err)
	}
	args := []string{"-i", "q", "queue", "-p", "p2", "join", "--session-ttl", "3s"}
	r := ctl(t, n.URL, args...)
	wantFailure(t, r, 1, args)
	if !strings.Contains(r.stderr, "already a permanent member") {
		t.Errorf("stderr: %q", r.stderr)
	}
	if tk, err := cl.QueueMember(rctx, "q", "p2"); err != nil || tk.Session != "" {
		t.Errorf("the permanent member after the refused join: %+v, %v; want it untouched", tk, err)
	}
}
