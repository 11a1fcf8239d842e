package fsm

// Restoring a user backup (POST /v1/snapshot) is one log command, so every
// replica applies it at the same index, ordered with every other write: no
// write can slip between reading the current state and replacing it.
//
// By default nothing moves backwards (SPEC §6 "Snapshots"): a counter keeps
// the larger of its current and backed-up value, queue high-water marks,
// fencing tokens and document versions continue from the larger of the two,
// and everything else comes from the backup. Objects that exist now but not
// in the backup are kept: dropping a counter would let it mint its values
// again from 0. Force restores the backup verbatim instead. Advance then
// adds N to every counter and queue high-water mark, for a backup restored
// into a cluster that cannot know what was minted after it was taken.
//
// This file holds the command, the refusals decided before anything
// changes, and the rules of the table counters and queues share. Each
// other table's rule lives with its kind and is registered from there
// (registerRestorer): documents in document.go, tenants in items.go,
// remembered keys in idempotency.go; mergeCounter and mergeQueue sit with
// their kinds too.
//
// Raft's own snapshot install (State.Restore) is a different thing: always
// verbatim, never a log command.

import (
	"bytes"
	"math"
)

// Restored is the result of a restore.
type Restored struct {
	// Counters, Queues, Documents and Tenants count the objects the backup
	// held (documents include deleted ones, kept for their versions).
	Counters  int64
	Queues    int64
	Documents int64
	Tenants   int64
	// Forced is true when the backup was restored verbatim.
	Forced bool
	// Advanced is what was added to every counter and queue high-water mark.
	Advanced uint64
	// BackupIndex is the applied index the backup was taken at, in the
	// cluster it came from.
	BackupIndex uint64
	// Index is the log index of the restore.
	Index uint64
}

// RestoreBackup restores a backup of the whole state: merged so that
// nothing moves backwards, or verbatim with Force; then Advance is added to
// every counter and queue high-water mark.
type RestoreBackup struct {
	// Snapshot is a snapshot stream as Snapshot.WriteTo writes it.
	Snapshot []byte
	// Force restores the backup verbatim: counters, tokens and versions may
	// move backwards, and objects absent from the backup are dropped.
	Force bool
	// Advance is added to every counter value and queue high-water mark
	// after the restore; at most 2^63−1.
	Advance uint64

	// parsed lets a payload read from the log hand the backup that Validate
	// decoded to apply, so each replica decodes a large backup once, and
	// before it takes the state's lock (see predecode).
	parsed *parsedBackup
}

// parsedBackup is the outcome of decoding a payload's backup: the state,
// or the error that refused it.
type parsedBackup struct {
	done bool
	st   *State
	err  error
}

// Op implements Payload.
func (RestoreBackup) Op() Op { return OpRestore }

// Validate implements Payload. It decodes the whole backup: a corrupt one is
// bad input, refused before it reaches the log.
func (p RestoreBackup) Validate() error {
	if p.Advance > math.MaxInt64 {
		return errorf(CodeBadRequest, "advance must be at most %d, got %d", int64(math.MaxInt64), p.Advance)
	}
	if p.parsed != nil && p.parsed.done {
		return p.parsed.err
	}
	st, err := parseBackup(p.Snapshot)
	if p.parsed != nil {
		*p.parsed = parsedBackup{done: true, st: st, err: err}
	}
	return err
}

func parseBackup(snapshot []byte) (*State, error) {
	st, err := readSnapshot(bytes.NewReader(snapshot))
	if err != nil {
		return nil, errorf(CodeBadRequest, "the backup is not a valid countd snapshot: %v", err)
	}
	return st, nil
}

func (p RestoreBackup) encode(e *encoder) {
	e.bool(p.Force)
	e.uvarint(p.Advance)
	e.bytes(p.Snapshot)
}

// backup returns the decoded backup, which apply may take apart: a cached
// one is handed out once.
func (p RestoreBackup) backup() (*State, error) {
	if p.parsed != nil && p.parsed.done && p.parsed.st != nil {
		st := p.parsed.st
		p.parsed.st, p.parsed.done = nil, false
		return st, nil
	}
	return parseBackup(p.Snapshot)
}

func (p RestoreBackup) apply(s *State, index uint64) (any, error) {
	b, err := p.backup()
	if err != nil {
		return nil, err
	}
	advance := int64(p.Advance) // Validate bounds it
	// Every refusal is decided before the first change, so a refused
	// restore changes nothing.
	if err := s.checkRestore(b, p.Force, advance); err != nil {
		return nil, err
	}
	out := &Restored{
		Documents: int64(len(b.docs)), Tenants: int64(len(b.tenants)),
		Forced: p.Force, Advanced: p.Advance, BackupIndex: b.applied, Index: index,
	}
	for _, o := range b.objects {
		if o.kind() == KindCounter {
			out.Counters++
		} else {
			out.Queues++
		}
	}
	for _, restore := range restorers {
		restore(s, b, p.Force, index)
	}
	// Restored documents replaced some of those the history log points
	// into.
	s.hist.rebuild(s.docs)
	s.removeOrphanMembers(index)
	s.advance(advance, index)
	return out, nil
}

// checkRestore refuses a restore that would break a rule, before anything
// changes. Names are visited in sorted order so every replica reports the
// same refusal.
func (s *State) checkRestore(b *State, force bool, advance int64) error {
	if !force {
		for _, name := range sortedKeys(b.objects) {
			cur, ok := s.objects[name]
			if bk := b.objects[name].kind(); ok && cur.kind() != bk {
				return errorf(CodeWrongType, "%s is a %s here but a %s in the backup; delete it first, or restore with force",
					name, cur.kind(), bk)
			}
		}
	}
	if advance == 0 {
		return nil
	}
	check := func(name string, o object) error {
		switch o := o.(type) {
		case *counter:
			if _, ok := addChecked(o.value, advance); !ok {
				return errorf(CodeOverflow, "advancing counter %s (value %d after the restore) by %d would pass %d",
					name, o.value, advance, int64(math.MaxInt64))
			}
		case *queue:
			if _, ok := addChecked(o.high, advance); !ok {
				return errorf(CodeOverflow, "advancing queue %s (high-water mark %d after the restore) by %d would pass %d",
					name, o.high, advance, int64(math.MaxInt64))
			}
		}
		return nil
	}
	for _, name := range sortedKeys(b.objects) {
		o := b.objects[name]
		if !force {
			o = mergedForCheck(s.objects[name], o)
		}
		if err := check(name, o); err != nil {
			return err
		}
	}
	if force {
		return nil
	}
	for _, name := range sortedKeys(s.objects) {
		if _, inBackup := b.objects[name]; !inBackup {
			if err := check(name, s.objects[name]); err != nil {
				return err
			}
		}
	}
	return nil
}

// mergedForCheck is as much of a merged counter or queue as the overflow
// check needs: the value or high-water mark a merge leaves.
func mergedForCheck(cur, bak object) object {
	switch bak := bak.(type) {
	case *counter:
		if cur, ok := cur.(*counter); ok {
			return &counter{value: max(cur.value, bak.value)}
		}
	case *queue:
		if cur, ok := cur.(*queue); ok {
			return &queue{high: max(cur.high, bak.high)}
		}
	}
	return bak
}

// restorers put the tables of a user backup b into s, as parts of one
// restore command at index: merged so that nothing moves backwards, or with
// force verbatim. Each table's owner registers its own, from init in its
// file; every refusal was decided before (checkRestore), so none can fail.
// b is taken apart.
var restorers []func(s, b *State, force bool, index uint64)

func registerRestorer(restore func(s, b *State, force bool, index uint64)) {
	restorers = append(restorers, restore)
}

// restoreObjects restores counters and queues, which share one name space
// (see checkRestore). Merged, each keeps what its kind's merge rule says
// (mergeCounter, mergeQueue) and objects only in s stay; forced, the
// backup's objects replace them all, each with the restore's index (it is
// their last write), and every queue that existed before or after is
// reported changed.
func restoreObjects(s, b *State, force bool, index uint64) {
	if !force {
		for _, name := range sortedKeys(b.objects) {
			switch bak := b.objects[name].(type) {
			case *counter:
				s.mergeCounter(name, bak, index)
			case *queue:
				s.mergeQueue(name, bak, index)
			}
		}
		return
	}
	for _, name := range s.sortedNames(KindQueue, "") {
		s.touch(KindQueue, name)
	}
	for name, o := range b.objects {
		switch o := o.(type) {
		case *counter:
			o.index = index
		case *queue:
			o.index = index
			s.touch(KindQueue, name)
		}
	}
	s.objects = b.objects
}

// advance adds n to every counter value and queue high-water mark;
// checkRestore has ruled out overflow. A queue's high-water mark is not
// part of what reads show, so the queue's index stays.
func (s *State) advance(n int64, index uint64) {
	if n == 0 {
		return
	}
	for _, o := range s.objects {
		switch o := o.(type) {
		case *counter:
			o.value += n
			o.index = index
		case *queue:
			o.high += n
		}
	}
}

// valRestore tags a *Restored result in snapshots. Persisted; do not
// renumber.
const valRestore byte = 8

func init() {
	register(OpRestore, "snapshot.restore", func(d *decoder) Payload {
		return RestoreBackup{Force: d.bool(), Advance: d.uvarint(), Snapshot: d.bytes(), parsed: &parsedBackup{}}
	})
	registerResult(valRestore, encodeRestored, decodeRestored)
	registerRestorer(restoreObjects)
}

func encodeRestored(e *encoder, r *Restored) {
	e.varint(r.Counters)
	e.varint(r.Queues)
	e.varint(r.Documents)
	e.varint(r.Tenants)
	e.bool(r.Forced)
	e.uvarint(r.Advanced)
	e.uvarint(r.BackupIndex)
	e.uvarint(r.Index)
}

func decodeRestored(d *decoder) *Restored {
	return &Restored{Counters: d.varint(), Queues: d.varint(), Documents: d.varint(), Tenants: d.varint(),
		Forced: d.bool(), Advanced: d.uvarint(), BackupIndex: d.uvarint(), Index: d.uvarint()}
}
