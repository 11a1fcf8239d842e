package fsm

// Sessions (SPEC §9): leases that live while their holder renews them.
// Whether one has run out is the leader's decision, carried in the log as
// an expire command with the leader's time, and checked again here against
// that time, so every replica ends the same sessions at the same index and
// a renew that reached the log first always wins.

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Session TTL bounds (SPEC §9).
const (
	MinSessionTTL = time.Second
	MaxSessionTTL = 24 * time.Hour
)

// Session is a session as reads and writes return it.
type Session struct {
	ID   string
	Name string
	TTL  time.Duration
	// Renewed is the leader time (Unix ns) of its creation or last renew.
	Renewed int64
	// Index is the log index of its creation.
	Index uint64
}

type session struct {
	name    string
	ttl     time.Duration
	renewed int64
	index   uint64
}

func (s *session) view(id string) *Session {
	return &Session{ID: id, Name: s.name, TTL: s.ttl, Renewed: s.renewed, Index: s.index}
}

// deadline is when the session ends unless renewed, counting from the
// later of its last renew and since (a leader's start: SPEC §9 gives every
// session a full TTL from it).
func (s *session) deadline(since int64) int64 {
	return max(s.renewed, since) + int64(s.ttl)
}

// Session reads one session and the applied index the read reflects.
func (s *State) Session(id string) (*Session, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ss := s.sessions[id]
	if ss == nil {
		return nil, s.applied, errSessionGone(id)
	}
	return ss.view(id), s.applied, nil
}

func errSessionGone(id string) error {
	return errorf(CodeNotFound, "session %s does not exist or has ended", id)
}

// SessionCount is how many sessions are live.
func (s *State) SessionCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sessions)
}

// SessionPage is one page of sessions in ID order: up to limit after after,
// leaving out those keep (when not nil) rejects; more reports whether a
// later page has any.
func (s *State) SessionPage(after string, limit int, keep func(*Session) bool) (page []*Session, more bool, applied uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := sortedKeys(s.sessions)
	names, more := pageOf(ids, after, limit, func(id string) bool { return keep == nil || keep(s.sessions[id].view(id)) })
	page = make([]*Session, len(names))
	for i, id := range names {
		page[i] = s.sessions[id].view(id)
	}
	return page, more, s.applied
}

// ExpiredSessions lists, in ID order, the sessions whose deadline counted
// from since (the caller's start as leader) is at or before now: what the
// leader proposes to end.
func (s *State) ExpiredSessions(now, since int64) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for id, ss := range s.sessions {
		if ss.deadline(since) <= now {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func checkSessionID(id string) error {
	if err := CheckAccessor(id); err != nil {
		return errorf(CodeInvalidName, "a session ID holds 1 to %d letters, digits and dashes; got %q", maxAccessorLen, id)
	}
	return nil
}

// SessionCreate starts a session. The node that takes the request picks
// its random ID.
type SessionCreate struct {
	ID   string
	Name string
	TTL  time.Duration
}

// Op implements Payload.
func (SessionCreate) Op() Op { return OpSessionCreate }

// Validate implements Payload.
func (p SessionCreate) Validate() error {
	if err := checkSessionID(p.ID); err != nil {
		return err
	}
	if p.Name != "" {
		if err := CheckName("session name", p.Name); err != nil {
			return err
		}
	}
	if p.TTL < MinSessionTTL || p.TTL > MaxSessionTTL {
		return errorf(CodeBadRequest, "a session's ttl must be between %s and %s, got %s", MinSessionTTL, MaxSessionTTL, p.TTL)
	}
	return nil
}

func (p SessionCreate) encode(e *encoder) { e.string(p.ID); e.string(p.Name); e.varint(int64(p.TTL)) }

func (p SessionCreate) apply(s *State, index uint64) (any, error) {
	if s.sessions[p.ID] != nil {
		return nil, errorf(CodeConflict, "session %s already exists", p.ID)
	}
	ss := &session{name: p.Name, ttl: p.TTL, renewed: s.now, index: index}
	s.sessions[p.ID] = ss
	return ss.view(p.ID), nil
}

// SessionRenew restarts a session's TTL from the leader's time.
type SessionRenew struct{ ID string }

// Op implements Payload.
func (SessionRenew) Op() Op { return OpSessionRenew }

// Validate implements Payload.
func (p SessionRenew) Validate() error { return checkSessionID(p.ID) }

func (p SessionRenew) encode(e *encoder) { e.string(p.ID) }

func (p SessionRenew) apply(s *State, _ uint64) (any, error) {
	ss := s.sessions[p.ID]
	if ss == nil {
		return nil, errSessionGone(p.ID)
	}
	ss.renewed = max(ss.renewed, s.now) // leader clocks may step back across elections
	return ss.view(p.ID), nil
}

// SessionDelete ends a session; ending one that is gone changes nothing.
type SessionDelete struct{ ID string }

// Op implements Payload.
func (SessionDelete) Op() Op { return OpSessionDelete }

// Validate implements Payload.
func (p SessionDelete) Validate() error { return checkSessionID(p.ID) }

func (p SessionDelete) encode(e *encoder) { e.string(p.ID) }

func (p SessionDelete) apply(s *State, index uint64) (any, error) {
	if s.sessions[p.ID] != nil {
		delete(s.sessions, p.ID)
		s.removeSessionMembers([]string{p.ID}, index)
	}
	return nil, nil
}

// SessionExpire ends the listed sessions that have run out by the
// command's leader time; one renewed since the leader decided is kept.
type SessionExpire struct{ IDs []string }

// Op implements Payload.
func (SessionExpire) Op() Op { return OpSessionExpire }

// Validate implements Payload.
func (p SessionExpire) Validate() error {
	if len(p.IDs) == 0 {
		return errorf(CodeBadRequest, "an expire names at least one session")
	}
	for _, id := range p.IDs {
		if err := checkSessionID(id); err != nil {
			return err
		}
	}
	return nil
}

func (p SessionExpire) encode(e *encoder) {
	e.uvarint(uint64(len(p.IDs)))
	for _, id := range p.IDs {
		e.string(id)
	}
}

// SessionsEnded is an expire's result: the sessions it ended.
type SessionsEnded struct{ IDs []string }

func (p SessionExpire) apply(s *State, index uint64) (any, error) {
	out := &SessionsEnded{}
	for _, id := range p.IDs {
		// Without a leader start here: the leader waited for its own
		// grace before proposing, and a renew since then moved renewed.
		if ss := s.sessions[id]; ss != nil && ss.deadline(0) <= s.now {
			delete(s.sessions, id)
			out.IDs = append(out.IDs, id)
		}
	}
	if len(out.IDs) > 0 {
		s.removeSessionMembers(out.IDs, index)
	}
	return out, nil
}

// removeSessionMembers takes the members of the ended sessions out of
// their queues (removeEphemeral), visiting only the queues those sessions
// joined.
func (s *State) removeSessionMembers(ids []string, index uint64) {
	if s.sessionQueues == nil {
		s.rebuildSessionQueues()
	}
	var names []string
	gone := make(map[string]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
		names = append(names, s.sessionQueues[id]...)
		delete(s.sessionQueues, id)
	}
	slices.Sort(names)
	s.removeEphemeral(slices.Compact(names), func(id string) bool { return gone[id] }, index)
}

// noteSessionQueue records that session joined queue name.
func (s *State) noteSessionQueue(session, name string) {
	if s.sessionQueues == nil {
		return // rebuilt from the queues when next needed
	}
	qs := s.sessionQueues[session]
	if !slices.Contains(qs, name) {
		s.sessionQueues[session] = append(qs, name)
	}
}

// rebuildSessionQueues derives sessionQueues from the queues' members.
func (s *State) rebuildSessionQueues() {
	s.sessionQueues = make(map[string][]string)
	for name, o := range s.objects {
		if q, ok := o.(*queue); ok {
			for _, m := range q.members {
				if m.session != "" {
					s.noteSessionQueue(m.session, name)
				}
			}
		}
	}
}

// removeEphemeral takes every member of the named queues (in that order;
// names that are not queues, or no longer, are skipped) whose session
// gone reports out of its queue, as the same log entry that ended the
// session: later members move up and each removal moves the queue's
// fencing token on by one, as a leave does.
func (s *State) removeEphemeral(names []string, gone func(session string) bool, index uint64) {
	for _, name := range names {
		q, ok := s.objects[name].(*queue)
		if !ok {
			continue
		}
		kept := make([]*member, 0, len(q.members))
		for _, m := range q.members {
			if m.session != "" && gone(m.session) {
				delete(q.byProc, m.process)
				q.token++
				continue
			}
			kept = append(kept, m)
		}
		if len(kept) != len(q.members) {
			// A new array: a snapshot or a reader may hold the old one.
			q.members = kept
			s.storeQueue(name, q, index)
		}
	}
}

// removeOrphanMembers takes out the ephemeral members whose session this
// state does not hold: a restored backup's members of sessions that have
// ended since, which must not come back (SPEC §9).
func (s *State) removeOrphanMembers(index uint64) {
	s.removeEphemeral(s.sortedNames(KindQueue, ""), func(id string) bool { return s.sessions[id] == nil }, index)
	s.sessionQueues = nil
}

// Snapshot record and result tags of sessions. Persisted; do not renumber.
const (
	recSession     byte = 8
	valSession     byte = 12
	valSessionsEnd byte = 13
)

func init() {
	register(OpSessionCreate, "session.create", func(d *decoder) Payload {
		return SessionCreate{ID: d.string(), Name: d.string(), TTL: time.Duration(d.varint())}
	})
	register(OpSessionRenew, "session.renew", func(d *decoder) Payload { return SessionRenew{ID: d.string()} })
	register(OpSessionDelete, "session.delete", func(d *decoder) Payload { return SessionDelete{ID: d.string()} })
	register(OpSessionExpire, "session.expire", func(d *decoder) Payload {
		n := d.count(1)
		p := SessionExpire{IDs: make([]string, 0, n)}
		for range n {
			p.IDs = append(p.IDs, d.string())
		}
		return p
	})
	registerSection(section{name: "session", tag: recSession, copy: copySessions, read: readEach(decodeSessionRecord, addRestoredSession)})
	registerResult(valSession, encodeSession, decodeSession)
	registerResult(valSessionsEnd, func(e *encoder, r *SessionsEnded) {
		e.uvarint(uint64(len(r.IDs)))
		for _, id := range r.IDs {
			e.string(id)
		}
	}, func(d *decoder) *SessionsEnded {
		n := d.count(1)
		r := &SessionsEnded{IDs: make([]string, 0, n)}
		for range n {
			r.IDs = append(r.IDs, d.string())
		}
		return r
	})
	registerRestorer(restoreSessions)
}

func copySessions(s *State) func(*recordWriter) error {
	return copyEach(recSession, sortedKeys(s.sessions), func(id string) *Session { return s.sessions[id].view(id) }, encodeSession)
}

func encodeSession(e *encoder, v *Session) {
	e.string(v.ID)
	e.string(v.Name)
	e.varint(int64(v.TTL))
	e.varint(v.Renewed)
	e.uvarint(v.Index)
}

func decodeSession(d *decoder) *Session {
	return &Session{ID: d.string(), Name: d.string(), TTL: time.Duration(d.varint()), Renewed: d.varint(), Index: d.uvarint()}
}

func decodeSessionRecord(d *decoder) (string, *Session) {
	v := decodeSession(d)
	return v.ID, v
}

func addRestoredSession(st *State, id string, v *Session) error {
	_, dup := st.sessions[id]
	if err := checkRestored("session", id, dup, "", 0); err != nil {
		return err
	}
	if err := checkSessionID(id); err != nil {
		return fmt.Errorf("session %q: %w", id, err)
	}
	if v.TTL < MinSessionTTL || v.TTL > MaxSessionTTL {
		return fmt.Errorf("session %s has ttl %s, outside %s..%s", id, v.TTL, MinSessionTTL, MaxSessionTTL)
	}
	st.sessions[id] = &session{name: v.Name, ttl: v.TTL, renewed: v.Renewed, index: v.Index}
	return nil
}

// restoreSessions keeps this state's sessions through a user backup's
// restore, merged or forced, and takes none of the backup's: a session is
// a live holder's lease, not data, and a restored backup must never bring
// back one that has ended (SPEC §9).
func restoreSessions(_, _ *State, _ bool, _ uint64) {}
