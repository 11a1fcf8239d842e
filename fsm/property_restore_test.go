package fsm

// Backup restores in the model-based property test. A sequence takes
// backups of its own state now and then (and starts with one of a foreign
// state, so kinds clash and documents run ahead); the generator restores
// one of them, merged or forced, sometimes advanced, sometimes corrupt. The
// model's rules below are written from SPEC §6 "Snapshots" (nothing moves
// backwards unless forced; --advance adds N to every counter and queue
// high-water mark), not from fsm/restore.go.

import (
	"bytes"
	"maps"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
)

// propBackup is a backup a sequence can restore: the bytes a state wrote,
// and the model's copy of what they hold.
type propBackup struct {
	data  []byte
	model *propModel // a deep copy, never changed
}

// clone is a deep copy of the model's state (not of its backups or
// coverage counts): later commands change the original in place.
func (m *propModel) clone() *propModel {
	c := newPropModel()
	c.applied = m.applied
	maps.Copy(c.counters, m.counters)
	maps.Copy(c.keys, m.keys)
	for name, q := range m.queues {
		c.queues[name] = q.clone()
	}
	for name, t := range m.tenants {
		c.tenants[name] = &propTenant{items: maps.Clone(t.items), index: t.index}
	}
	for name, d := range m.docs {
		c.docs[name] = d.clone()
	}
	return c
}

func (q *propQueue) clone() *propQueue {
	c := *q
	c.members = slices.Clone(q.members)
	return &c
}

// clone copies a document; its value and changes are never mutated once
// stored, only replaced or appended to.
func (d *propDoc) clone() *propDoc {
	c := *d
	c.changes = slices.Clone(d.changes)
	return &c
}

// highMark is the queue's high-water mark as the SPEC counts it: the
// highest counter handed out, or -1 before the first (counters are never
// negative: min is at least 0).
func (q *propQueue) highMark() int64 {
	if q.used {
		return q.high
	}
	return -1
}

func (q *propQueue) setHighMark(h int64) { q.used, q.high = h >= 0, h }

// sameMembers compares memberships as sets: members are unique by process.
func (q *propQueue) sameMembers(o *propQueue) bool {
	if len(q.members) != len(o.members) {
		return false
	}
	for _, a := range q.members {
		b, ok := o.find(a.process)
		if !ok || a.counter != b.counter || a.token != b.token || a.index != b.index || !maps.Equal(a.tags, b.tags) {
			return false
		}
	}
	return true
}

// addBackup records a backup of st, which must match the model.
//
// Which expired idempotency keys a backup still carries is the table's own
// business: it forgets them lazily, in insertion order, and a restore into
// a cluster whose clock is behind the backup's can bring them back. So the
// backup's copy of the model keeps the keys the bytes hold, after checking
// that they hold every key still live at the backup's time, with the
// model's expiry.
func (m *propModel) addBackup(run *propRun, st *State) {
	var buf bytes.Buffer
	if _, err := st.Snapshot().WriteTo(&buf); err != nil {
		run.fatalf("backup: WriteTo: %v", err)
	}
	parsed, err := readSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		run.fatalf("backup: the state's own snapshot does not read back: %v", err)
	}
	c := m.clone()
	for key, k := range c.keys {
		e := parsed.idem.byKey[key]
		switch {
		case e == nil && k.expires > m.now:
			run.fatalf("backup: key %q, live until %d, is missing", key, k.expires)
		case e == nil:
			delete(c.keys, key)
		case e.expires != k.expires:
			run.fatalf("backup: key %q expires at %d, the model says %d", key, e.expires, k.expires)
		}
	}
	if len(parsed.idem.byKey) != len(c.keys) {
		run.fatalf("backup holds %d keys, the model knows %d of them", len(parsed.idem.byKey), len(c.keys))
	}
	m.backups = append(m.backups, propBackup{data: buf.Bytes(), model: c})
}

func (m *propModel) backupOf(data []byte) *propModel {
	for _, b := range m.backups {
		if bytes.Equal(b.data, data) {
			return b.model
		}
	}
	return nil
}

// propJunk is a state built from 40 random commands of its own generator,
// and its model: a stranger's state, to be restored over or from.
func propJunk(run *propRun, seed uint64, seq int) (*State, *propModel) {
	junk := &propGen{r: rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(seq))), now: propBaseTime}
	jm := newPropModel()
	st := propNewState()
	for j := uint64(1); j <= 40; j++ {
		c := junk.command(jm)
		if jm.validate(c) != "" {
			continue
		}
		jm.apply(c, j)
		data, err := Encode(c)
		if err != nil {
			run.fatalf("junk Encode: %v", err)
		}
		st.Apply(j, data)
	}
	return st, jm
}

// restorePayload restores one of the sequence's backups: mostly intact,
// sometimes forced or advanced (now and then far enough to overflow, or
// past what the SPEC allows), sometimes corrupt.
func (g *propGen) restorePayload(m *propModel) Payload {
	b := propOneOf(g, m.backups)
	p := RestoreBackup{Snapshot: b.data, Force: g.chance(30)}
	switch x := g.pick(100); {
	case x < 6:
		p.Snapshot = b.data[:g.pick(len(b.data))] // truncated
	case x < 8:
		p.Snapshot = []byte(propOneOf(g, []string{"", "CNTDSNAP", `{"counters":[]}`}))
	}
	switch x := g.pick(100); {
	case x < 60:
	case x < 85:
		p.Advance = uint64(1 + g.pick(1000))
	case x < 95:
		p.Advance = math.MaxInt64 - uint64(g.pick(1000)) // overflows whatever is above 1000
	default:
		p.Advance = math.MaxInt64 + 1 + uint64(g.pick(2))
	}
	return p
}

// validateRestore is the model's check of a restore before the log.
func (m *propModel) validateRestore(p RestoreBackup) Code {
	if p.Advance > math.MaxInt64 || m.backupOf(p.Snapshot) == nil {
		return CodeBadRequest
	}
	return ""
}

// restore applies a backup restore: SPEC §6 "Snapshots". A refusal is
// decided before anything changes.
func (m *propModel) restore(p RestoreBackup, index uint64) propResult {
	b := m.backupOf(p.Snapshot)
	refuse := func(code Code) propResult { return propResult{index: index, code: code} }
	if !p.Force {
		for name := range b.counters {
			if _, q := m.queues[name]; q {
				return refuse(CodeWrongType)
			}
		}
		for name := range b.queues {
			if _, c := m.counters[name]; c {
				return refuse(CodeWrongType)
			}
		}
	}
	advance := int64(p.Advance)
	fits := func(v int64) bool {
		return propFits(new(big.Int).Add(big.NewInt(v), big.NewInt(advance)))
	}
	for name, c := range b.counters {
		v := c.value
		if cur, ok := m.counters[name]; ok && !p.Force {
			v = max(v, cur.value)
		}
		if !fits(v) {
			return refuse(CodeOverflow)
		}
	}
	for name, q := range b.queues {
		h := q.highMark()
		if cur, ok := m.queues[name]; ok && !p.Force {
			h = max(h, cur.highMark())
		}
		if !fits(h) {
			return refuse(CodeOverflow)
		}
	}
	if !p.Force {
		for name, c := range m.counters {
			if _, in := b.counters[name]; !in && !fits(c.value) {
				return refuse(CodeOverflow)
			}
		}
		for name, q := range m.queues {
			if _, in := b.queues[name]; !in && !fits(q.highMark()) {
				return refuse(CodeOverflow)
			}
		}
	}

	res := &Restored{
		Counters: int64(len(b.counters)), Queues: int64(len(b.queues)), Documents: int64(len(b.docs)), Tenants: int64(len(b.tenants)),
		Forced: p.Force, Advanced: p.Advance, BackupIndex: b.applied, Index: index,
	}
	// Remembered results are facts about this log: the backup's are added
	// where this state has none that is still live, either way.
	for key, e := range b.keys {
		if cur, ok := m.keys[key]; e.expires > m.now && !(ok && cur.expires > m.now) {
			m.keys[key] = e
		}
	}
	m.floors = map[string]uint64{}
	if p.Force {
		m.forceFrom(b, index)
	} else {
		m.mergeFrom(b, index)
	}
	if advance != 0 {
		for name, c := range m.counters {
			c.value += advance
			c.index = index
			m.counters[name] = c
		}
		for _, q := range m.queues {
			q.setHighMark(q.highMark() + advance)
		}
		m.note("restore advances")
	}
	return propResult{index: index, value: res}
}

// mergeFrom: counters keep the larger value, queue high-water marks and
// fencing tokens continue from the larger (a changed membership moves the
// token on), documents never go back a version, and objects the backup
// does not hold are kept. Whatever does not change keeps its index.
func (m *propModel) mergeFrom(b *propModel, index uint64) {
	for name, bc := range b.counters {
		c := bc
		if cur, ok := m.counters[name]; ok {
			c.value, c.monotonic, c.index = max(cur.value, bc.value), cur.monotonic || bc.monotonic, cur.index
			if c == cur {
				m.note("restore leaves a counter as it is")
				continue
			}
			if cur.value > bc.value {
				m.note("restore keeps a larger counter")
			}
		}
		c.index = index
		m.counters[name] = c
	}
	for name, bq := range b.queues {
		q := bq.clone()
		if cur, ok := m.queues[name]; ok {
			q.setHighMark(max(cur.highMark(), bq.highMark()))
			q.token = max(cur.token, bq.token)
			same := cur.sameMembers(bq)
			if q.token == cur.token && !same {
				q.token++
				m.note("restore moves a fencing token on")
			}
			if same && q.token == cur.token && q.highMark() == cur.highMark() && q.min == cur.min && q.max == cur.max && q.reuse == cur.reuse {
				continue
			}
		}
		q.index = index
		m.queues[name] = q
	}
	for name, bd := range b.docs {
		m.restoreDoc(name, bd, false, index)
	}
	for name, bt := range b.tenants {
		if cur := m.tenants[name]; cur != nil && maps.Equal(cur.items, bt.items) {
			continue
		}
		m.tenants[name] = &propTenant{items: maps.Clone(bt.items), index: index}
	}
}

// forceFrom makes the backup the whole state, every object written at the
// restore's index; a document that differs at the same version still
// becomes a new version, so no watcher misses it.
func (m *propModel) forceFrom(b *propModel, index uint64) {
	m.counters = map[string]propCounter{}
	for name, c := range b.counters {
		c.index = index
		m.counters[name] = c
	}
	m.queues = map[string]*propQueue{}
	for name, bq := range b.queues {
		q := bq.clone()
		q.index = index
		m.queues[name] = q
	}
	for name := range m.docs {
		if _, in := b.docs[name]; !in {
			delete(m.docs, name)
			m.floors[name] = 0
			m.note("forced restore drops a document")
		}
	}
	for name, bd := range b.docs {
		m.restoreDoc(name, bd, true, index)
	}
	m.tenants = map[string]*propTenant{}
	for name, bt := range b.tenants {
		m.tenants[name] = &propTenant{items: maps.Clone(bt.items), index: index}
	}
}

// restoreDoc: a backed-up version ahead of the current one (or, forced,
// behind it) is taken as it is, with no change history up to it; an equal
// value changes nothing; a different value at or below the current version
// becomes the next version.
func (m *propModel) restoreDoc(name string, bd *propDoc, force bool, index uint64) {
	cur := m.docs[name]
	switch {
	case cur == nil || bd.version > cur.version || force && bd.version < cur.version:
		d := bd.clone()
		d.index = index
		m.docs[name] = d
		m.floors[name] = d.version
		m.note("restore takes a document as it is")
	case (cur.value == nil) == (bd.value == nil) && (cur.value == nil || propJSONEqual(cur.value, bd.value)):
	default:
		m.writeDoc(name, bd.value, index)
		m.note("restore writes a document's next version")
	}
}
