package fsm

// Queue rules: ordered members that each hold a unique counter drawn from a
// configured range, with a fencing token that rises by one per effective
// join or leave. With reuse, a join takes the lowest free counter in range
// (ZooKeeper myid 1…255); without it, counters are never handed out twice.

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
)

// Limits on queue input.
const (
	// MaxTags is the most tags one member may carry.
	MaxTags = 64
	// MaxTagValueLen is the longest tag value in bytes.
	MaxTagValueLen = 1024
)

// QueueConfig is the range a queue draws member counters from.
type QueueConfig struct {
	Min   int64
	Max   int64
	Reuse bool
}

// DefaultQueueConfig is the range of a queue never configured: 1…2^63−1,
// no reuse.
func DefaultQueueConfig() QueueConfig { return QueueConfig{Min: 1, Max: math.MaxInt64} }

// Ticket is one member of a queue as reads and writes return it.
type Ticket struct {
	// Queue is the queue's name.
	Queue     string
	ProcessID string
	// Counter is unique among the queue's members and never changes.
	Counter int64
	// Position is the member's 0-based rank by counter.
	Position int
	Tags     map[string]string
	// FencingToken is the queue's token after this member's join (on a
	// re-join, the queue's current token).
	FencingToken uint64
	// Index is the log index of the join that made this membership.
	Index uint64
	// Session is the session the member joined with, "" for a member that
	// stays until it leaves: an ephemeral member leaves when it ends.
	Session string
}

// Queue is a queue's state as reads return it.
type Queue struct {
	ID           string
	FencingToken uint64
	Config       QueueConfig
	// Members are ordered by counter; Position is their index here.
	Members []*Ticket
	// Index is the log index of the last write to the queue, 0 if never
	// written.
	Index uint64
}

// Leave is the result of a leave.
type Leave struct {
	Queue        string
	FencingToken uint64
	Index        uint64
}

type member struct {
	process string
	counter int64
	tags    map[string]string
	token   uint64
	index   uint64
	session string // "" unless ephemeral
}

// queue is the stored form. A queue never written is absent from the table
// and reads as empty with the default config and token 0.
type queue struct {
	cfg   QueueConfig
	token uint64
	// high is the highest counter ever handed out, -1 before the first: it
	// keeps non-reuse queues from repeating a counter after a leave.
	high    int64
	members []*member // sorted by counter
	byProc  map[string]*member
	index   uint64
}

func (*queue) kind() Kind { return KindQueue }

func newQueue() *queue {
	return &queue{cfg: DefaultQueueConfig(), high: -1, byProc: make(map[string]*member)}
}

// position is the member's rank by counter.
func (q *queue) position(counter int64) int {
	return sort.Search(len(q.members), func(i int) bool { return q.members[i].counter >= counter })
}

func (q *queue) ticket(id string, m *member, pos int) *Ticket {
	// The tags are copied: a caller changing its ticket must not change the
	// replicated state.
	return &Ticket{Queue: id, ProcessID: m.process, Counter: m.counter, Position: pos, Tags: maps.Clone(m.tags), FencingToken: m.token, Index: m.index, Session: m.session}
}

func (q *queue) view(id string) *Queue {
	v := &Queue{ID: id, FencingToken: q.token, Config: q.cfg, Index: q.index, Members: make([]*Ticket, len(q.members))}
	for i, m := range q.members {
		v.Members[i] = q.ticket(id, m, i)
	}
	return v
}

// nextCounter is the counter a join would get, or false when the range is
// used up.
func (q *queue) nextCounter() (int64, bool) {
	if !q.cfg.Reuse {
		if q.high == math.MaxInt64 {
			return 0, false
		}
		c := max(q.high+1, q.cfg.Min)
		return c, c <= q.cfg.Max
	}
	// Lowest value in [min, max] no member holds: members are sorted, so
	// walk them from the first one at or above min.
	c := q.cfg.Min
	for _, m := range q.members[q.position(c):] {
		if m.counter != c {
			break
		}
		if c == math.MaxInt64 {
			return 0, false
		}
		c++
	}
	return c, c <= q.cfg.Max
}

// lookupQueue returns the stored queue or nil when the name was never
// written; wrong_type when the name holds another kind.
func (s *State) lookupQueue(id string) (*queue, error) {
	switch o := s.objects[id].(type) {
	case nil:
		return nil, nil
	case *queue:
		return o, nil
	default:
		return nil, wrongType(id, o.kind(), KindQueue)
	}
}

// storeQueue records a write to queue id at index: the queue (perhaps new)
// is stored with that index as its last write, and its watchers are woken.
func (s *State) storeQueue(id string, q *queue, index uint64) {
	q.index = index
	s.objects[id] = q
	s.touch(KindQueue, id)
}

// Queue reads one queue and the applied index the read reflects. A queue
// never written reads as empty.
func (s *State) Queue(id string) (*Queue, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	q, err := s.lookupQueue(id)
	if err != nil {
		return nil, s.applied, err
	}
	if q == nil {
		q = newQueue()
	}
	return q.view(id), s.applied, nil
}

// QueueMember reads one member's ticket; not_found when the process is not
// queued.
func (s *State) QueueMember(id, process string) (*Ticket, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	q, err := s.lookupQueue(id)
	if err != nil {
		return nil, s.applied, err
	}
	if q == nil || q.byProc[process] == nil {
		return nil, s.applied, errorf(CodeNotFound, "process %s is not queued in %s", process, id)
	}
	m := q.byProc[process]
	return q.ticket(id, m, q.position(m.counter)), s.applied, nil
}

// QueueJoin queues a process, or returns its existing ticket.
type QueueJoin struct {
	ID        string
	ProcessID string
	Tags      map[string]string
	// Session, when set, makes the member ephemeral: it leaves in the same
	// log entry that ends the session.
	Session string
}

// Op implements Payload.
func (QueueJoin) Op() Op { return OpQueueJoin }

// Validate implements Payload.
func (p QueueJoin) Validate() error {
	if err := CheckName("queue name", p.ID); err != nil {
		return err
	}
	if err := CheckName("process id", p.ProcessID); err != nil {
		return err
	}
	if len(p.Tags) > MaxTags {
		return errorf(CodeBadRequest, "a member may carry at most %d tags, got %d", MaxTags, len(p.Tags))
	}
	for k, v := range p.Tags {
		if err := CheckName("tag key", k); err != nil {
			return err
		}
		if len(v) > MaxTagValueLen {
			return errorf(CodeBadRequest, "tag %s is %d bytes long; the limit is %d", k, len(v), MaxTagValueLen)
		}
	}
	if p.Session != "" {
		return checkSessionID(p.Session)
	}
	return nil
}

func (p QueueJoin) encode(e *encoder) {
	e.string(p.ID)
	e.string(p.ProcessID)
	encodeTags(e, p.Tags)
	// Written only when set, so joins from before sessions encode, and
	// fingerprint, as they did.
	if p.Session != "" {
		e.string(p.Session)
	}
}

func (p QueueJoin) apply(s *State, index uint64) (any, error) {
	q, err := s.lookupQueue(p.ID)
	if err != nil {
		return nil, err
	}
	if q == nil {
		q = newQueue()
	} else if m := q.byProc[p.ProcessID]; m != nil {
		t := q.ticket(p.ID, m, q.position(m.counter))
		t.FencingToken = q.token
		return t, nil
	}
	if p.Session != "" && s.sessions[p.Session] == nil {
		return nil, errSessionGone(p.Session)
	}
	c, ok := q.nextCounter()
	if !ok {
		return nil, errorf(CodeQueueFull, "queue %s has no free counter left in %d…%d (reuse %t)", p.ID, q.cfg.Min, q.cfg.Max, q.cfg.Reuse)
	}
	var tags map[string]string
	if len(p.Tags) > 0 {
		tags = maps.Clone(p.Tags)
	}
	q.token++
	m := &member{process: p.ProcessID, counter: c, tags: tags, token: q.token, index: index, session: p.Session}
	pos := q.position(c)
	q.members = slices.Insert(q.members, pos, m)
	q.byProc[p.ProcessID] = m
	q.high = max(q.high, c)
	s.storeQueue(p.ID, q, index)
	if p.Session != "" {
		s.noteSessionQueue(p.Session, p.ID)
	}
	return q.ticket(p.ID, m, pos), nil
}

// QueueLeave removes a process from a queue; later members move up.
type QueueLeave struct {
	ID        string
	ProcessID string
}

// Op implements Payload.
func (QueueLeave) Op() Op { return OpQueueLeave }

// Validate implements Payload.
func (p QueueLeave) Validate() error {
	if err := CheckName("queue name", p.ID); err != nil {
		return err
	}
	return CheckName("process id", p.ProcessID)
}

func (p QueueLeave) encode(e *encoder) { e.string(p.ID); e.string(p.ProcessID) }

func (p QueueLeave) apply(s *State, index uint64) (any, error) {
	q, err := s.lookupQueue(p.ID)
	if err != nil {
		return nil, err
	}
	if q == nil || q.byProc[p.ProcessID] == nil {
		return nil, errorf(CodeNotFound, "process %s is not queued in %s", p.ProcessID, p.ID)
	}
	m := q.byProc[p.ProcessID]
	pos := q.position(m.counter)
	q.members = slices.Delete(q.members, pos, pos+1)
	delete(q.byProc, p.ProcessID)
	q.token++
	s.storeQueue(p.ID, q, index)
	return &Leave{Queue: p.ID, FencingToken: q.token, Index: index}, nil
}

// QueueConfigure changes any of a queue's range settings. Existing members
// keep their counters and the fencing token does not move.
type QueueConfigure struct {
	ID    string
	Min   *int64
	Max   *int64
	Reuse *bool
}

// Op implements Payload.
func (QueueConfigure) Op() Op { return OpQueueConfigure }

// Validate implements Payload.
func (p QueueConfigure) Validate() error {
	if err := CheckName("queue name", p.ID); err != nil {
		return err
	}
	if p.Min == nil && p.Max == nil && p.Reuse == nil {
		return errorf(CodeBadRequest, "queue config needs at least one of min, max or reuse")
	}
	if p.Min != nil && *p.Min < 0 {
		return errorf(CodeBadRequest, "min must be at least 0, got %d", *p.Min)
	}
	if p.Max != nil && *p.Max < 0 {
		return errorf(CodeBadRequest, "max must be at least 0, got %d", *p.Max)
	}
	if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
		return errorf(CodeBadRequest, "min %d is above max %d", *p.Min, *p.Max)
	}
	return nil
}

func (p QueueConfigure) encode(e *encoder) {
	e.string(p.ID)
	e.optInt(p.Min)
	e.optInt(p.Max)
	e.optBool(p.Reuse)
}

func (p QueueConfigure) apply(s *State, index uint64) (any, error) {
	q, err := s.lookupQueue(p.ID)
	if err != nil {
		return nil, err
	}
	if q == nil {
		q = newQueue()
	}
	cfg := q.cfg
	if p.Min != nil {
		cfg.Min = *p.Min
	}
	if p.Max != nil {
		cfg.Max = *p.Max
	}
	if p.Reuse != nil {
		cfg.Reuse = *p.Reuse
	}
	if cfg.Min > cfg.Max {
		return nil, errorf(CodeBadRequest, "queue %s would have min %d above max %d", p.ID, cfg.Min, cfg.Max)
	}
	q.cfg = cfg
	s.storeQueue(p.ID, q, index)
	return q.view(p.ID), nil
}

// QueueDelete removes a queue with its members and config. A queue created
// again under the name starts from token 0 and min.
type QueueDelete struct{ ID string }

// Op implements Payload.
func (QueueDelete) Op() Op { return OpQueueDelete }

// Validate implements Payload.
func (p QueueDelete) Validate() error { return CheckName("queue name", p.ID) }

func (p QueueDelete) encode(e *encoder) { e.string(p.ID) }

func (p QueueDelete) apply(s *State, _ uint64) (any, error) {
	q, err := s.lookupQueue(p.ID)
	if err != nil || q == nil {
		return nil, err
	}
	delete(s.objects, p.ID)
	s.touch(KindQueue, p.ID)
	return nil, nil
}

// encodeTags writes tags in key order: the encoding feeds the idempotency
// fingerprint, so the same tags must always give the same bytes.
func encodeTags(e *encoder, tags map[string]string) {
	keys := sortedKeys(tags)
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.string(k)
		e.string(tags[k])
	}
}

func decodeTags(d *decoder) map[string]string {
	n := d.count(2) // a tag is two strings
	if n == 0 {
		return nil
	}
	tags := make(map[string]string, n)
	for range n {
		k := d.string()
		tags[k] = d.string()
	}
	return tags
}

func init() {
	register(OpQueueJoin, "queue.join", func(d *decoder) Payload {
		p := QueueJoin{ID: d.string(), ProcessID: d.string(), Tags: decodeTags(d)}
		if d.more() {
			p.Session = d.string()
		}
		return p
	})
	register(OpQueueLeave, "queue.leave", func(d *decoder) Payload {
		return QueueLeave{ID: d.string(), ProcessID: d.string()}
	})
	register(OpQueueConfigure, "queue.configure", func(d *decoder) Payload {
		return QueueConfigure{ID: d.string(), Min: d.optInt(), Max: d.optInt(), Reuse: d.optBool()}
	})
	register(OpQueueDelete, "queue.delete", func(d *decoder) Payload {
		return QueueDelete{ID: d.string()}
	})
	registerSection(section{name: "queue", tag: recQueue, copy: copyQueues, read: readEach(decodeQueue, addRestoredQueue)})
	registerResult(valTicket, encodeTicket, decodeTicket)
	registerResult(valLeave, encodeLeave, decodeLeave)
	registerResult(valQueue, encodeQueueView, decodeQueueView)
	registerResult(valSessionTicket, func(e *encoder, t *sessionTicket) {
		encodeTicket(e, (*Ticket)(t))
		e.string(t.Session)
	}, func(d *decoder) *sessionTicket {
		t := decodeTicket(d)
		t.Session = d.string()
		return (*sessionTicket)(t)
	})
	registerResult(valSessionQueue, func(e *encoder, q *sessionQueue) {
		encodeQueueView(e, (*Queue)(q))
		for _, t := range q.Members {
			e.string(t.Session)
		}
	}, func(d *decoder) *sessionQueue {
		q := decodeQueueView(d)
		for _, t := range q.Members {
			t.Session = d.string()
		}
		return (*sessionQueue)(q)
	})
}

// sessionTicket and sessionQueue are how the idempotency table keeps a
// ticket, or a queue view, that has an ephemeral member (remembered): the
// older encodings predate sessions and are kept as they were.
type (
	sessionTicket Ticket
	sessionQueue  Queue
)

func (q *Queue) hasSessions() bool {
	for _, t := range q.Members {
		if t.Session != "" {
			return true
		}
	}
	return false
}

// Snapshot record and result tags of queues. Persisted; do not renumber.
const (
	recQueue         byte = 4
	valTicket        byte = 3
	valLeave         byte = 4
	valQueue         byte = 5
	valSessionTicket byte = 14
	valSessionQueue  byte = 15
)

// queueCopy is a queue as a snapshot holds it until written.
type queueCopy struct {
	name string
	q    queue // members slice copied; members themselves never change
}

// copyQueues is the queues' part of a snapshot, in name order.
func copyQueues(s *State) func(*recordWriter) error {
	return copyEach(recQueue, s.sortedNames(KindQueue, ""), func(name string) *queueCopy {
		q := *s.objects[name].(*queue)
		q.members = slices.Clone(q.members)
		q.byProc = nil
		return &queueCopy{name: name, q: q}
	}, encodeQueue)
}

func encodeQueue(e *encoder, c *queueCopy) {
	e.string(c.name)
	encodeQueueConfig(e, c.q.cfg)
	e.uvarint(c.q.token)
	e.varint(c.q.high)
	e.uvarint(c.q.index)
	e.uvarint(uint64(len(c.q.members)))
	for _, m := range c.q.members {
		e.string(m.process)
		e.varint(m.counter)
		encodeTags(e, m.tags)
		e.uvarint(m.token)
		e.uvarint(m.index)
	}
	// Ephemeral members' sessions follow, only when there are any, so a
	// queue without them reads the same in a build that predates sessions.
	var ephemeral []*member
	for _, m := range c.q.members {
		if m.session != "" {
			ephemeral = append(ephemeral, m)
		}
	}
	if len(ephemeral) > 0 {
		e.uvarint(uint64(len(ephemeral)))
		for _, m := range ephemeral {
			e.string(m.process)
			e.string(m.session)
		}
	}
}

func decodeQueue(d *decoder) (string, *queue) {
	name := d.string()
	q := newQueue()
	q.cfg = decodeQueueConfig(d)
	q.token = d.uvarint()
	q.high = d.varint()
	q.index = d.uvarint()
	for range d.count(1) {
		m := &member{process: d.string(), counter: d.varint(), tags: decodeTags(d), token: d.uvarint(), index: d.uvarint()}
		q.members = append(q.members, m)
		q.byProc[m.process] = m
	}
	if d.more() {
		for range d.count(2) {
			process, session := d.string(), d.string()
			if m := q.byProc[process]; m != nil {
				m.session = session
			} else {
				d.fail(fmt.Errorf("queue %s: session of %s, who is not a member", name, process))
			}
		}
	}
	return name, q
}

// addRestoredQueue adds a restored queue to st, held to the invariants
// Apply keeps: counters unique and sorted, none above the high-water mark,
// one ticket per process.
func addRestoredQueue(st *State, name string, q *queue) error {
	_, dup := st.objects[name]
	if err := checkRestored("queue", name, dup, "fencing token", q.token); err != nil {
		return err
	}
	if q.cfg.Min < 0 || q.cfg.Min > q.cfg.Max {
		return fmt.Errorf("queue %s has range %d…%d", name, q.cfg.Min, q.cfg.Max)
	}
	if len(q.byProc) != len(q.members) {
		return fmt.Errorf("queue %s lists a process twice", name)
	}
	for i, m := range q.members {
		if err := CheckName("process id", m.process); err != nil {
			return fmt.Errorf("queue %s: %w", name, err)
		}
		if i > 0 && m.counter <= q.members[i-1].counter {
			return fmt.Errorf("queue %s: member counters are not unique and sorted", name)
		}
		if m.counter > q.high {
			return fmt.Errorf("queue %s: counter %d is above the high-water mark %d", name, m.counter, q.high)
		}
	}
	st.objects[name] = q
	return nil
}

func encodeQueueConfig(e *encoder, c QueueConfig) {
	e.varint(c.Min)
	e.varint(c.Max)
	e.bool(c.Reuse)
}

func decodeQueueConfig(d *decoder) QueueConfig {
	return QueueConfig{Min: d.varint(), Max: d.varint(), Reuse: d.bool()}
}

func encodeTicket(e *encoder, t *Ticket) {
	e.string(t.Queue)
	e.string(t.ProcessID)
	e.varint(t.Counter)
	e.uvarint(uint64(t.Position))
	encodeTags(e, t.Tags)
	e.uvarint(t.FencingToken)
	e.uvarint(t.Index)
}

func decodeTicket(d *decoder) *Ticket {
	return &Ticket{Queue: d.string(), ProcessID: d.string(), Counter: d.varint(), Position: int(d.uvarint()),
		Tags: decodeTags(d), FencingToken: d.uvarint(), Index: d.uvarint()}
}

func encodeLeave(e *encoder, l *Leave) {
	e.string(l.Queue)
	e.uvarint(l.FencingToken)
	e.uvarint(l.Index)
}

func decodeLeave(d *decoder) *Leave {
	return &Leave{Queue: d.string(), FencingToken: d.uvarint(), Index: d.uvarint()}
}

// encodeQueueView and decodeQueueView store a *Queue result (a configure's
// answer), not the stored queue (encodeQueue).
func encodeQueueView(e *encoder, q *Queue) {
	e.string(q.ID)
	e.uvarint(q.FencingToken)
	encodeQueueConfig(e, q.Config)
	e.uvarint(q.Index)
	e.uvarint(uint64(len(q.Members)))
	for _, t := range q.Members {
		encodeTicket(e, t)
	}
}

func decodeQueueView(d *decoder) *Queue {
	q := &Queue{ID: d.string(), FencingToken: d.uvarint(), Config: decodeQueueConfig(d), Index: d.uvarint()}
	q.Members = make([]*Ticket, d.count(1))
	for i := range q.Members {
		q.Members[i] = decodeTicket(d)
	}
	return q
}

// mergeQueue restores a backed-up queue without moving it backwards (see
// restore.go): members and config come from the backup; the high-water
// mark and the fencing token continue from the larger of the two, and a
// membership that changes moves the token on, as a join or leave would, so
// a holder of the old token sees it is stale.
func (s *State) mergeQueue(name string, bak *queue, index uint64) {
	q := bak
	if cur, ok := s.objects[name].(*queue); ok {
		q.high = max(cur.high, bak.high)
		q.token = max(cur.token, bak.token)
		same := sameMembers(cur.members, bak.members)
		if q.token == cur.token && !same {
			q.token++
		}
		if same && q.token == cur.token && q.high == cur.high && q.cfg == cur.cfg {
			return
		}
	}
	s.storeQueue(name, q, index)
}

func sameMembers(a, b []*member) bool {
	if len(a) != len(b) {
		return false
	}
	for i, x := range a {
		y := b[i]
		if x.process != y.process || x.counter != y.counter || x.token != y.token || x.index != y.index || x.session != y.session || !maps.Equal(x.tags, y.tags) {
			return false
		}
	}
	return true
}
