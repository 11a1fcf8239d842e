package jepsenlite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/internal/harness"
	"github.com/countd/countd/test/jepsen-lite/netns"
	"github.com/countd/countd/test/jepsen-lite/nodes"
)

// The commands the holders run under the lock. Each appends lines
// "WHO WHAT TOKEN SESSION PID NS" to $EVENTS: "start" when it starts
// (with its fencing token, its session and its own pid, $$: the process
// countctl started, the one that holds the lock), and for the first
// holder "end" when it has finished stopping. The timestamps come from
// date(1) inside the commands, not from the test, so they say when the
// command itself began and stopped acting; both holders run on this host,
// so their clocks agree (and agree with the test's). The script's
// parameters travel in the environment, which countctl hands on to its
// command, so no path is ever quoted into a script.

// lockSlowStopScript takes 300 ms to stop after SIGTERM and only then
// writes "end", standing for a command that has cleaning up to do: the
// lock must still be its own while it does. The sleep runs in the
// background and the shell waits for it because a shell runs its trap
// only between commands: in the foreground, sleep would hold the trap
// back until it finished.
const lockSlowStopScript = `trap 'kill $! 2>/dev/null; sleep 0.3; echo "$WHO end - - $$ $(date +%s%N)" >> "$EVENTS"; exit ` + lockChildTermCode + `' TERM
echo "$WHO start $COUNTD_FENCING_TOKEN $COUNTD_SESSION $$ $(date +%s%N)" >> "$EVENTS"
sleep 600 & wait`

// lockDeafScript ignores SIGTERM altogether: only SIGKILL stops it. exec
// keeps the pid, and an ignored signal stays ignored across exec, so the
// process whose pid it writes is the very one that holds the lock, with
// no child of its own that could outlive it.
const lockDeafScript = `trap '' TERM
echo "$WHO start $COUNTD_FENCING_TOKEN $COUNTD_SESSION $$ $(date +%s%N)" >> "$EVENTS"
exec sleep 600`

// lockNextScript is the second holder's: before its "start" it records
// whether the first holder's process (its pid from A's start line) still
// exists, as "B sees-A-alive" or "B sees-A-gone". A process that has
// exited but is not yet reaped still exists: countctl must have waited
// for it.
const lockNextScript = `apid=
while read who what token session pid at; do
  [ "$who $what" = "A start" ] && apid=$pid
done < "$EVENTS"
if [ -z "$apid" ]; then seen=unknown; elif [ -e "/proc/$apid" ]; then seen=alive; else seen=gone; fi
echo "$WHO sees-A-$seen - - - $(date +%s%N)" >> "$EVENTS"
echo "$WHO start $COUNTD_FENCING_TOKEN $COUNTD_SESSION $$ $(date +%s%N)" >> "$EVENTS"`

// lockChildTermCode is what lockSlowStopScript exits with on SIGTERM:
// EX_TEMPFAIL, and unlike 143 (128+SIGTERM) it can only come from the
// trap, so countctl exiting with it shows both that the command was
// stopped by SIGTERM rather than SIGKILL and that countctl passes its
// command's status on.
const lockChildTermCode = "75"

// lockPartitionSubnet is the network's third octet. Campaigns in the same
// package run use netns.ForPID, whose subnets are 1…250, and are named
// after the jepsen-lite process; this network is named after the test
// process with a suffix and sits outside that range, so neither its names
// nor its addresses can be taken for a campaign's.
const lockPartitionSubnet = 253

// lockHolder is one `countctl lock` process and how it ended.
type lockHolder struct {
	*harness.Child
	stderr bytes.Buffer
}

// startLockHolder runs countctl with args inside namespace ns, its
// command's lines going to events under the name who.
func startLockHolder(t *testing.T, countctl, ns, who, events string, args ...string) *lockHolder {
	t.Helper()
	h := &lockHolder{}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, countctl}, args...)...)
	// Without COUNTD_* (countctl reads its defaults from them); the
	// script's parameters travel in the environment, which countctl
	// hands on to its command, so no path is ever quoted into the script.
	cmd.Env = append(harness.WithoutCountdEnv(os.Environ()), "WHO="+who, "EVENTS="+events)
	cmd.Stderr = &h.stderr
	// Its own process group, so the cleanup also reaches the command and
	// its sleep, which countctl leaves behind when it is killed alone.
	child, err := harness.StartChild(cmd)
	if err != nil {
		t.Fatal(err)
	}
	h.Child = child
	t.Cleanup(func() { _ = h.Kill(10 * time.Second) })
	return h
}

// wait waits up to timeout for the process to exit and returns its exit
// code.
func (h *lockHolder) wait(t *testing.T, who string, timeout time.Duration) int {
	t.Helper()
	select {
	case <-h.Done():
	case <-time.After(timeout):
		t.Fatalf("%s's countctl was still running %v later", who, timeout)
	}
	var ee *exec.ExitError
	switch err := h.Err(); {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("%s's countctl: %v", who, h.Err())
	return -1
}

// lockEvent is one line of the commands' events file.
type lockEvent struct {
	who, what, session string
	token              uint64
	pid                int
	at                 time.Time
}

func readLockEvents(t *testing.T, path string) []lockEvent {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []lockEvent
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 6 {
			// A line being appended right now; the next poll sees it whole.
			continue
		}
		ns, err := strconv.ParseInt(f[5], 10, 64)
		if err != nil {
			t.Fatalf("bad time in event %q: %v", line, err)
		}
		e := lockEvent{who: f[0], what: f[1], session: f[3], at: time.Unix(0, ns)}
		if e.what == "start" {
			if e.token, err = strconv.ParseUint(f[2], 10, 64); err != nil {
				t.Fatalf("bad fencing token in event %q: %v", line, err)
			}
		}
		if f[4] != "-" {
			if e.pid, err = strconv.Atoi(f[4]); err != nil {
				t.Fatalf("bad pid in event %q: %v", line, err)
			}
		}
		out = append(out, e)
	}
	return out
}

func findLockEvent(events []lockEvent, who, what string) (lockEvent, bool) {
	for _, e := range events {
		if e.who == who && e.what == what {
			return e, true
		}
	}
	return lockEvent{}, false
}

// countctlJSON runs a one-shot countctl command in namespace ns and decodes
// its JSON output into out.
func countctlJSON(countctl, ns string, out any, args ...string) error {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, countctl, "--timeout", "2s", "-o", "json"}, args...)...)
	cmd.Env = harness.WithoutCountdEnv(os.Environ())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("countctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return json.Unmarshal(b, out)
}

// TestPartitionedLockHolder proves SPEC §9's promise that a partitioned
// lock holder's command is stopped before another holder starts, and that
// its countctl then exits although it cannot reach the cluster. Killing a
// holder (test/e2e) shows that the lock moves on; it cannot show the other
// half, that a holder which is alive but cut off from the cluster stops
// its own command in time: that needs a real network that can be cut
// between the holder and every node while the next holder still reaches
// them. So the holder runs in a namespace of its own beside the three
// nodes', the waiter in the hub, and only the holder's links are cut.
//
// The bound it rests on is KeepSession's Deadline: a TTL after the last
// renew that succeeded was sent, while the leader ends the session no
// sooner than a TTL after applying that renew, which comes later. countctl
// sends SIGTERM min(--grace, TTL/3) plus a margin before the Deadline and
// SIGKILL the margin before it, so the command is dead before the leader
// can end the session, however slowly it stops or even if it ignores
// SIGTERM: the two cases below.
func TestPartitionedLockHolder(t *testing.T) {
	requireRoot(t)
	countd, _ := binaries(t)
	countctl, err := harness.Countctl()
	if err != nil {
		t.Fatal(err)
	}

	// Four namespaces: the nodes in 0…2 and holder A in 3, which has no
	// node, so cutting it off isolates the client alone and the cluster
	// keeps its leader.
	nw := netns.New(fmt.Sprintf("%s%d-lock", netns.Prefix, os.Getpid()), lockPartitionSubnet, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := nw.Create(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nw.Destroy(); err != nil {
			t.Error(err)
		}
	})
	// nodes.New runs a node in each of its network's namespaces: a view of
	// the same network with three of them leaves the fourth to the client.
	c, err := nodes.New(countd, netns.New(nw.ID, nw.Subnet, 3), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.KillAll(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			for _, p := range c.Nodes {
				t.Logf("--- last lines of %s's log (%s) ---\n%s", p.ID, p.LogPath, p.LogTail(60))
			}
		}
	})
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}

	// The test process sits in the root namespace, which has no route to
	// the nodes, so it asks them through countctl run in the hub.
	var last harness.Poll
	harness.WaitFor(t, 30*time.Second, "the three nodes to agree on a leader", func() bool {
		last = harness.Poll{}
		for _, p := range c.Nodes {
			if st := p.ExitState(); st != "" {
				t.Fatalf("%s exited (%s) before the cluster formed", p.ID, st)
			}
			var st api.Cluster
			err := countctlJSON(countctl, nw.Hub(), &st, "-a", p.URL(), "cluster", "status")
			last.IDs, last.Statuses, last.Errs = append(last.IDs, p.ID), append(last.Statuses, &st), append(last.Errs, err)
		}
		_, ok := last.Converged(3)
		return ok
	})

	p := &lockPartition{nw: nw, countctl: countctl, urls: strings.Join(c.URLs(), ","), clientNS: 3}
	// Both cases on the one cluster, one after the other (each heals the
	// network when it is done), each on a lock of its own.
	termCode, _ := strconv.Atoi(lockChildTermCode)
	for _, tc := range []lockCase{
		{name: "slow-to-stop", lock: "partitioned-slow", script: lockSlowStopScript, code: termCode, writesEnd: true},
		{name: "ignores-SIGTERM", lock: "partitioned-deaf", script: lockDeafScript, code: 128 + int(syscall.SIGKILL)},
	} {
		t.Run(tc.name, func(t *testing.T) { p.run(ctx, t, tc) })
	}
}

// lockCase is one of TestPartitionedLockHolder's cases: holder A runs
// script under lock, and its countctl must exit with code (its command's
// status); writesEnd says whether the script writes an "end" line.
type lockCase struct {
	name, lock, script string
	code               int
	writesEnd          bool
}

// lockPartition is the network and cluster TestPartitionedLockHolder's
// cases share.
type lockPartition struct {
	nw             *netns.Network
	countctl, urls string
	clientNS       int // holder A's namespace, with no node in it
}

// run has holder A (in its own namespace) take tc.lock running tc.script
// and holder B (in the hub) queue behind it, then cuts A off from every
// node and does not heal the cut until A's countctl has exited: A's
// command must be gone before B's starts, and A's countctl must exit,
// with its command's status, within a bound.
func (p *lockPartition) run(ctx context.Context, t *testing.T, tc lockCase) {
	lock := tc.lock
	const (
		ttl     = 2 * time.Second
		grace   = time.Second
		timeout = 3 * time.Second // A's --timeout, which bounds its way out
	)
	t.Cleanup(func() {
		if err := p.nw.Heal(ctx); err != nil {
			t.Error(err)
		}
	})
	events := filepath.Join(t.TempDir(), "events")
	lockArgs := func(script string) []string {
		return []string{"-a", p.urls, "--timeout", timeout.String(), "lock", lock, "--ttl", ttl.String(), "--grace", grace.String(), "--", "sh", "-c", script}
	}
	a := startLockHolder(t, p.countctl, p.nw.Node(p.clientNS), "A", events, lockArgs(tc.script)...)
	var aStart lockEvent
	harness.WaitFor(t, 20*time.Second, "A's command to start under the lock", func() bool {
		if a.Exited() {
			t.Fatalf("A's countctl exited before its command started: %v\n%s", a.Err(), a.stderr.String())
		}
		var ok bool
		aStart, ok = findLockEvent(readLockEvents(t, events), "A", "start")
		return ok
	})
	aProc := fmt.Sprintf("/proc/%d", aStart.pid)
	if _, err := os.Stat(aProc); err != nil {
		t.Fatalf("A's command (pid %d) is not running: %v", aStart.pid, err)
	}

	b := startLockHolder(t, p.countctl, p.nw.Hub(), "B", events, lockArgs(lockNextScript)...)
	// B must be queued behind A before the cut: otherwise B could simply
	// arrive after A's session ended and prove nothing about the handover.
	harness.WaitFor(t, 20*time.Second, "B to queue behind A", func() bool {
		if b.Exited() {
			t.Fatalf("B's countctl exited while A held the lock: %v\n%s", b.Err(), b.stderr.String())
		}
		var q api.Queue
		if err := countctlJSON(p.countctl, p.nw.Hub(), &q, "-a", p.urls, "-i", lock, "queue", "list"); err != nil {
			return false
		}
		return len(q.Members) == 2 && q.Members[0].ProcessID == "session-"+aStart.session && q.Members[0].Position == 0
	})
	if evs := readLockEvents(t, events); len(evs) != 1 {
		t.Fatalf("before the partition only A's command may have run; events: %+v", evs)
	}
	if a.Exited() {
		t.Fatalf("A's countctl exited while holding the lock: %v\n%s", a.Err(), a.stderr.String())
	}

	cutStart := time.Now()
	if err := p.nw.Partition(ctx, []int{p.clientNS}, []int{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	// The cut is whole only once the last blackhole is in place.
	cut := time.Now()

	// Watch A's process disappear (exited and reaped by its countctl):
	// the moment it is seen gone comes after the moment it died, so
	// "seen gone before B started" is proof. Polled every millisecond
	// to measure closely; the conditions, not the polling, decide.
	var aGone time.Time
	var bStart lockEvent
	for bStart.at.IsZero() {
		if time.Since(cut) > 2*ttl+5*time.Second {
			t.Fatalf("B's command had not started %v after the cut; events: %+v\nA said: %s\nB said: %s",
				time.Since(cut), readLockEvents(t, events), a.stderr.String(), b.stderr.String())
		}
		if aGone.IsZero() {
			if _, err := os.Stat(aProc); errors.Is(err, os.ErrNotExist) {
				aGone = time.Now()
			}
		}
		if e, ok := findLockEvent(readLockEvents(t, events), "B", "start"); ok {
			bStart = e
			break
		}
		time.Sleep(time.Millisecond)
	}
	if tc.writesEnd {
		// Whether it came before B's start or not, wait for A's end line,
		// so a failure below says by how much.
		harness.WaitFor(t, ttl+grace+5*time.Second, "A's command to finish stopping", func() bool {
			_, ok := findLockEvent(readLockEvents(t, events), "A", "end")
			return ok
		})
	}
	evs := readLockEvents(t, events)
	seen, _ := findLockEvent(evs, "B", "sees-A-gone")
	aEnd, hasEnd := findLockEvent(evs, "A", "end")

	if aGone.IsZero() || !aGone.Before(bStart.at) {
		t.Errorf("B's command started at %v while A's (pid %d) was still there (seen gone: %v): two holders at once",
			bStart.at.Format(time.StampMicro), aStart.pid, aGone.Format(time.StampMicro))
	}
	if seen.at.IsZero() {
		t.Errorf("B's command did not find A's process gone when it started; events: %+v", evs)
	}
	if hasEnd != tc.writesEnd {
		t.Errorf("A's command wrote an end line: %v, want %v; events: %+v", hasEnd, tc.writesEnd, evs)
	}
	if hasEnd && !aEnd.at.Before(bStart.at) {
		t.Errorf("B's command started at %v, %v before A's finished stopping at %v: two holders at once",
			bStart.at.Format(time.StampMicro), aEnd.at.Sub(bStart.at), aEnd.at.Format(time.StampMicro))
	}
	if bStart.token <= aStart.token {
		t.Errorf("B's fencing token %d is not above A's %d", bStart.token, aStart.token)
	}
	since := func(from, to time.Time) string {
		if from.IsZero() || to.IsZero() {
			return "-"
		}
		return to.Sub(from).Round(time.Millisecond).String()
	}
	t.Logf("partition took %v to put in place; from the whole cut: A's command (token %d) wrote its end after %s and was gone by %s; B's (token %d) started after %s, %s after A's was gone (TTL %v, --grace %v)",
		cut.Sub(cutStart).Round(time.Millisecond), aStart.token, since(cut, aEnd.at), since(cut, aGone),
		bStart.token, since(cut, bStart.at), since(aGone, bStart.at), ttl, grace)
	// A's last successful renew was sent before the cut, so the session's
	// Deadline is within a TTL of it, and countctl kills the command a
	// margin (120 ms for a 2s TTL) before that. 250 ms more are for
	// seeing it gone on a loaded machine.
	if stopped := aGone.Sub(cut); !aGone.IsZero() && stopped > ttl+250*time.Millisecond {
		t.Errorf("A's command was gone only %v after the partition, beyond the TTL of %v", stopped, ttl)
	}
	// A TTL after the last applied renew, plus the leader's 100 ms check,
	// a commit and B's wake-up; 2×TTL is far beyond all of that.
	if started := bStart.at.Sub(cut); started > 2*ttl {
		t.Errorf("B's command started %v after the partition, beyond twice the TTL of %v", started, ttl)
	}

	// Still cut off, A's countctl must exit: it gives up giving its place
	// up once the session counts as lost (at the Deadline, within a TTL of
	// the cut), and ending the session takes at most --timeout. The bound
	// adds --grace and a second to spare.
	bound := ttl + grace + timeout + time.Second
	code := a.wait(t, "A", bound+10*time.Second)
	exited := time.Since(cut)
	if exited > bound {
		t.Errorf("A's countctl exited %v after the cut, beyond TTL + --grace + --timeout + 1s = %v", exited, bound)
	}
	// The spec: countctl exits with its command's status.
	if code != tc.code {
		t.Errorf("A's countctl exited %d, want its command's %d; stderr:\n%s", code, tc.code, a.stderr.String())
	} else {
		t.Logf("A's countctl, still cut off, exited %v after the cut with %d, its command's status; it said:\n%s",
			exited.Round(time.Millisecond), code, strings.TrimSpace(a.stderr.String()))
	}
	for _, want := range []string{"lock " + lock + " at risk", "lost lock " + lock} {
		if !strings.Contains(a.stderr.String(), want) {
			t.Errorf("A's countctl did not say %q on stderr:\n%s", want, a.stderr.String())
		}
	}
	if code := b.wait(t, "B", 15*time.Second); code != 0 {
		t.Errorf("B's countctl exited %d, want 0; stderr:\n%s", code, b.stderr.String())
	}
	want := []string{"A start", "B sees-A-gone", "B start"}
	if hasEnd {
		want = []string{"A start", "A end", "B sees-A-gone", "B start"}
	}
	var got []string
	for _, e := range readLockEvents(t, events) {
		got = append(got, e.who+" "+e.what)
	}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}
