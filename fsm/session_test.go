package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestSessionLifecycle(t *testing.T) {
	a := newApplier(t)
	for _, ttl := range []time.Duration{999 * time.Millisecond, 24*time.Hour + time.Second} {
		if r := a.do(SessionCreate{ID: "s1", TTL: ttl}); !errors.Is(r.Err, ErrBadRequest) {
			t.Errorf("ttl %s: %v, want bad_request", ttl, r.Err)
		}
	}
	if r := a.do(SessionCreate{ID: "not an id", TTL: time.Second}); !errors.Is(r.Err, ErrInvalidName) {
		t.Errorf("bad id: %v", r.Err)
	}
	created := resultOf[Session](t, "create", a.doKey(SessionCreate{ID: "s1", Name: "lock-a", TTL: 10 * time.Second}, "k1"))
	if created.Renewed != a.now || created.TTL != 10*time.Second || created.Name != "lock-a" {
		t.Fatalf("created: %+v", created)
	}
	if r := a.do(SessionCreate{ID: "s1", TTL: time.Second}); !errors.Is(r.Err, ErrConflict) {
		t.Fatalf("second create of s1: %v", r.Err)
	}
	// A retry of the create replays it.
	if r := a.doKey(SessionCreate{ID: "s1", Name: "lock-a", TTL: 10 * time.Second}, "k1"); !r.Replayed {
		t.Fatal("create retry not replayed")
	}

	a.now += int64(6 * time.Second)
	renewed := resultOf[Session](t, "renew", a.do(SessionRenew{ID: "s1"}))
	if renewed.Renewed != a.now {
		t.Fatalf("renew did not move the lease: %+v", renewed)
	}
	// 9 s after the renew it is still live: an expire proposed now ends
	// nothing.
	a.now += int64(9 * time.Second)
	if ended := resultOf[SessionsEnded](t, "early expire", a.do(SessionExpire{IDs: []string{"s1"}})); len(ended.IDs) != 0 {
		t.Fatalf("expire before the deadline ended %v", ended.IDs)
	}
	if got := a.s.ExpiredSessions(a.now, 0); len(got) != 0 {
		t.Fatalf("expired before the deadline: %v", got)
	}
	a.now += int64(time.Second)
	if got := a.s.ExpiredSessions(a.now, 0); !slices.Equal(got, []string{"s1"}) {
		t.Fatalf("expired at the deadline: %v", got)
	}
	// A leader that started 5 s ago gives it a full TTL from then.
	if got := a.s.ExpiredSessions(a.now, a.now-int64(5*time.Second)); len(got) != 0 {
		t.Fatalf("expired within a new leader's grace: %v", got)
	}
	if ended := resultOf[SessionsEnded](t, "expire", a.do(SessionExpire{IDs: []string{"s1"}})); !slices.Equal(ended.IDs, []string{"s1"}) {
		t.Fatalf("expire at the deadline ended %v", ended.IDs)
	}
	if r := a.do(SessionRenew{ID: "s1"}); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("renew of an ended session: %v, want not_found", r.Err)
	}
	if _, _, err := a.s.Session("s1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read of an ended session: %v", err)
	}

	// Delete ends one at once; deleting again changes nothing.
	a.do(SessionCreate{ID: "s2", TTL: time.Minute})
	if r := a.do(SessionDelete{ID: "s2"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := a.do(SessionDelete{ID: "s2"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if page, _, _ := a.s.SessionPage("", 10, nil); len(page) != 0 {
		t.Fatalf("sessions left: %+v", page)
	}
}

func TestSessionsInSnapshotsAndRestores(t *testing.T) {
	a := newApplier(t)
	a.do(SessionCreate{ID: "live", Name: "x", TTL: time.Minute})
	a.do(SessionCreate{ID: "ended", TTL: time.Minute})
	var backup bytes.Buffer
	if _, err := a.s.Snapshot().WriteTo(&backup); err != nil {
		t.Fatal(err)
	}
	// A snapshot install brings sessions over as they were.
	installed := New()
	if err := installed.Restore(bytes.NewReader(backup.Bytes())); err != nil {
		t.Fatal(err)
	}
	if !installed.Snapshot().Equal(a.s.Snapshot()) {
		t.Fatal("sessions differ after a snapshot round trip")
	}
	// A user backup's restore never brings back a session that ended
	// since, merged or forced.
	a.do(SessionDelete{ID: "ended"})
	for _, force := range []bool{false, true} {
		if r := a.do(RestoreBackup{Snapshot: backup.Bytes(), Force: force}); r.Err != nil {
			t.Fatal(r.Err)
		}
		if _, _, err := a.s.Session("ended"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("force=%t: the restore revived an ended session", force)
		}
		if _, _, err := a.s.Session("live"); err != nil {
			t.Fatalf("force=%t: the restore ended a live session: %v", force, err)
		}
	}
}

func TestEphemeralMembersLeaveWithTheirSession(t *testing.T) {
	a := newApplier(t)
	a.do(SessionCreate{ID: "s1", TTL: 10 * time.Second})
	a.do(SessionCreate{ID: "s2", TTL: time.Minute})
	if r := a.do(QueueJoin{ID: "q", ProcessID: "ghost", Session: "nope"}); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("join with an unknown session: %v", r.Err)
	}
	a.do(QueueJoin{ID: "q", ProcessID: "keeper"})
	t1 := resultOf[Ticket](t, "join e1", a.doKey(QueueJoin{ID: "q", ProcessID: "e1", Session: "s1"}, "join-e1"))
	a.do(QueueJoin{ID: "q", ProcessID: "e2", Session: "s2"})
	a.do(QueueJoin{ID: "q", ProcessID: "last"})
	if t1.Session != "s1" || t1.Position != 1 {
		t.Fatalf("ephemeral ticket: %+v", t1)
	}
	before, _, _ := a.s.Queue("q")

	// The session's end takes its member out in the same entry: later
	// members move up, the token rises by one.
	a.now += int64(10 * time.Second)
	a.do(SessionExpire{IDs: []string{"s1"}})
	after, _, _ := a.s.Queue("q")
	if len(after.Members) != 3 || after.Members[1].ProcessID != "e2" || after.Members[1].Position != 1 || after.FencingToken != before.FencingToken+1 {
		t.Fatalf("after s1 expired: token %d (was %d), members %+v", after.FencingToken, before.FencingToken, after.Members)
	}
	// A retry of the join replays its ticket, session included, even
	// after a snapshot round trip.
	var snap bytes.Buffer
	if _, err := a.s.Snapshot().WriteTo(&snap); err != nil {
		t.Fatal(err)
	}
	restored := New()
	if err := restored.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	if !restored.Snapshot().Equal(a.s.Snapshot()) {
		t.Fatal("ephemeral members differ after a snapshot round trip")
	}
	a.s = restored
	r := a.doKey(QueueJoin{ID: "q", ProcessID: "e1", Session: "s1"}, "join-e1")
	if tk := resultOf[Ticket](t, "replayed join", r); !r.Replayed || tk.Session != "s1" {
		t.Fatalf("replayed join: %+v", tk)
	}

	// A backup taken while s2 lived, restored after s2 ended, does not
	// bring its member back.
	var backup bytes.Buffer
	if _, err := a.s.Snapshot().WriteTo(&backup); err != nil {
		t.Fatal(err)
	}
	a.do(SessionDelete{ID: "s2"})
	if q, _, _ := a.s.Queue("q"); len(q.Members) != 2 {
		t.Fatalf("after s2 was deleted: %+v", q.Members)
	}
	for _, force := range []bool{false, true} {
		if r := a.do(RestoreBackup{Snapshot: backup.Bytes(), Force: force}); r.Err != nil {
			t.Fatal(r.Err)
		}
		q, _, _ := a.s.Queue("q")
		for _, m := range q.Members {
			if m.ProcessID == "e2" {
				t.Fatalf("force=%t: the restore brought back the member of an ended session", force)
			}
		}
	}
}

// Ending a session visits only the queues it joined (State.sessionQueues,
// kept up as members join). Here one state keeps that index up as it
// goes, through restores of its own snapshots, and another rebuilds it
// from the queues before every command: every result, and the final
// state, must be the same.
func TestSessionEndsVisitTheQueuesAFullScanWould(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		kept, rebuilt := newApplier(t), newApplier(t)
		pick := func(prefix string, n int) string { return fmt.Sprintf("%s%d", prefix, r.IntN(n)) }
		removed := 0
		for step := range 400 {
			var p Payload
			switch k := r.IntN(10); {
			case k < 4:
				session := ""
				if r.IntN(4) > 0 {
					session = pick("s", 5)
				}
				p = QueueJoin{ID: pick("q", 8), ProcessID: pick("p", 12), Session: session}
			case k < 5:
				p = QueueLeave{ID: pick("q", 8), ProcessID: pick("p", 12)}
			case k < 6:
				p = QueueDelete{ID: pick("q", 8)}
			case k < 8:
				p = SessionCreate{ID: pick("s", 5), TTL: time.Duration(1+r.IntN(5)) * time.Second}
			case k < 9:
				p = SessionDelete{ID: pick("s", 5)}
			default:
				p = SessionExpire{IDs: []string{pick("s", 5), pick("s", 5)}}
			}
			if r.IntN(3) == 0 {
				kept.now += int64(time.Second)
				rebuilt.now = kept.now
			}
			if r.IntN(50) == 0 { // a snapshot install replaces the queues
				var buf bytes.Buffer
				if _, err := kept.s.Snapshot().WriteTo(&buf); err != nil {
					t.Fatal(err)
				}
				if err := kept.s.Restore(&buf); err != nil {
					t.Fatal(err)
				}
			}
			rebuilt.s.sessionQueues = nil
			before := membersOf(rebuilt.s)
			got, want := kept.do(p), rebuilt.do(p)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d step %d %T%+v: %+v with the kept index, %+v with a rebuilt one", seed, step, p, p, got, want)
			}
			if _, ok := p.(QueueLeave); !ok && membersOf(rebuilt.s) < before {
				if _, ok := p.(QueueDelete); !ok {
					removed++
				}
			}
		}
		var a, b bytes.Buffer
		kept.s.Snapshot().WriteTo(&a)
		rebuilt.s.Snapshot().WriteTo(&b)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("seed %d: the states differ at the end", seed)
		}
		if removed == 0 {
			t.Fatalf("seed %d: no session's end removed a member; the test tests nothing", seed)
		}
	}
}

// membersOf counts the members of every queue.
func membersOf(s *State) int {
	n := 0
	for _, o := range s.objects {
		if q, ok := o.(*queue); ok {
			n += len(q.members)
		}
	}
	return n
}

// Ending a session costs what its own queues hold, not what the state
// holds: go test ./fsm -run '^$' -bench SessionEnd
func BenchmarkSessionEnd(b *testing.B) {
	for _, queues := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("queues=%d", queues), func(b *testing.B) {
			s, index, now := New(), uint64(0), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
			apply := func(p Payload) Result {
				data, err := Encode(Command{Payload: p, Time: now, KeyWindow: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				index++
				return s.Apply(index, data)
			}
			for i := range queues {
				if r := apply(QueueJoin{ID: fmt.Sprintf("q%d", i), ProcessID: "permanent"}); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			b.ResetTimer()
			for range b.N {
				apply(SessionCreate{ID: "s1", TTL: time.Minute})
				apply(QueueJoin{ID: "q0", ProcessID: "ephemeral", Session: "s1"})
				if r := apply(SessionDelete{ID: "s1"}); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		})
	}
}
