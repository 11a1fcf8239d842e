package fsm

import (
	"bytes"
	"errors"
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
