// Package fsm is countd's replicated state machine: the commands that change
// state, their log encoding, Apply, reads, and Snapshot/Restore.
//
// It is deterministic and pure: its output depends only on its state and the
// command. It does no I/O of its own, reads no clock (time arrives in the
// command, stamped by the leader), starts no goroutines and uses no
// randomness, so every replica that applies the same log holds the same
// state. Of countd's packages it imports only api, the leaf package of wire
// codes and rules that its refusals are expressed in.
package fsm

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Kind is the type of a named object. Counters and queues share one name
// space, so an operation on a name holding the other kind fails with
// wrong_type; documents and item tenants each have their own.
type Kind uint8

// Object kinds. Values are persisted in snapshots; do not renumber.
const (
	KindCounter  Kind = 1
	KindQueue    Kind = 2
	KindDocument Kind = 3
	KindTenant   Kind = 4
)

func (k Kind) String() string {
	switch k {
	case KindCounter:
		return "counter"
	case KindQueue:
		return "queue"
	case KindDocument:
		return "document"
	case KindTenant:
		return "tenant"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Key names one object for change notifications.
type Key struct {
	Kind Kind
	Name string
}

// DefaultWatchHistory is how many versions of changes each document keeps
// for watchers unless Options says otherwise.
const DefaultWatchHistory = 1000

// DefaultWatchHistoryBytes is how many bytes of change history the
// documents of one node keep together unless Options says otherwise.
const DefaultWatchHistoryBytes = 64 << 20

// Options tune a State. The zero value is the defaults.
type Options struct {
	// WatchHistory is how many versions of changes each document keeps for
	// watchers that resume; an older resume point gets a reset. It only
	// shapes what watchers are told (and how far back a replayed document
	// write can rebuild its value), never the state, so replicas may differ
	// in it.
	WatchHistory int
	// WatchHistoryBytes bounds the change histories of all documents
	// together (DefaultWatchHistoryBytes when 0); past it the oldest
	// versions of any document go first.
	WatchHistoryBytes int64
	// OnChange, when set, is called after each Apply, ApplyBatch or Restore
	// that changed a queue or a document, outside the state's lock, with the
	// keys that changed (nil after a restore: anything may have changed). It
	// runs on the applying goroutine, so it must not block.
	OnChange func(keys []Key)
}

type object interface{ kind() Kind }

func wrongType(name string, have, want Kind) *Error {
	return errorf(CodeWrongType, "%s is a %s, not a %s", name, have, want)
}

// State is the whole replicated state of one node. Apply and Restore take the
// write lock; reads take the read lock, so a reader never sees half a command.
type State struct {
	mu sync.RWMutex
	tables

	history  int
	onChange func([]Key)
	touched  []Key // keys changed by the apply in progress, for onChange
	// now is the leader time of the command being applied: a payload that
	// must judge idempotency expiry (a restore merging keys) reads it here.
	now int64
	// maxDocSize is the document size limit the command being applied
	// carries (Command.MaxDocSize); 0 for none.
	maxDocSize int64
	// hist bounds the documents' change histories in bytes. Like history
	// it is this node's own, not replicated state.
	hist historyLog
	// sessionQueues is derived from the queues, never stored: for each
	// session, every queue it has joined (a superset of the queues that
	// hold its members now), so that ending a session visits those
	// queues, not all of them. A slice, not a set: a session is in a few
	// queues, and a set would cost more than the member. nil when it
	// must be rebuilt (after a restore replaced the queues).
	sessionQueues map[string][]string
}

// tables are what the log builds and a snapshot holds: Restore replaces
// them whole. A kind with a table of its own adds it here and in empty.
type tables struct {
	applied  uint64
	objects  map[string]object // counters and queues
	tenants  map[string]*tenant
	docs     map[string]*document
	idem     idemTable
	acl      aclTable
	sessions map[string]*session
}

// New returns an empty state with default options.
func New() *State { return NewWithOptions(Options{}) }

// NewWithOptions returns an empty state.
func NewWithOptions(o Options) *State {
	if o.WatchHistory <= 0 {
		o.WatchHistory = DefaultWatchHistory
	}
	if o.WatchHistoryBytes <= 0 {
		o.WatchHistoryBytes = DefaultWatchHistoryBytes
	}
	s := empty()
	s.history, s.onChange = o.WatchHistory, o.OnChange
	s.hist.max = o.WatchHistoryBytes
	return s
}

func empty() *State {
	return &State{
		tables: tables{
			objects:  make(map[string]object),
			tenants:  make(map[string]*tenant),
			docs:     make(map[string]*document),
			idem:     newIdemTable(),
			acl:      newACLTable(),
			sessions: make(map[string]*session),
		},
		history: DefaultWatchHistory,
		hist:    historyLog{max: DefaultWatchHistoryBytes},
	}
}

// touch records that an object changed, for OnChange.
func (s *State) touch(k Kind, name string) {
	if s.onChange != nil {
		s.touched = append(s.touched, Key{Kind: k, Name: name})
	}
}

// unlockAndNotify releases the write lock and then reports what changed, so
// a notified reader never waits for the lock it was woken to take.
func (s *State) unlockAndNotify() {
	keys := s.touched
	s.touched = nil
	s.mu.Unlock()
	if len(keys) > 0 {
		s.onChange(keys)
	}
}

// Result is what applying one command produced.
type Result struct {
	// Index is the log index of the command that produced Value and Err. For
	// a replayed idempotent command it is the original command's index.
	Index uint64
	// Value is the command's output: *Counter, *Mint, *Ticket, *Leave,
	// *Queue, *ItemsAdded, *Document, *Restored, or nil (a delete).
	Value any
	// Err is a *Error when a rule refused the command; nothing changed then.
	Err error
	// Replayed is true when an earlier command with the same idempotency key
	// produced this result and the command was not applied again.
	Replayed bool
}

// Entry is one committed log entry handed to ApplyBatch. Data is nil for
// entries that only move the applied index (Raft configuration changes).
type Entry struct {
	Index uint64
	Data  []byte
}

// Apply applies one committed log entry and returns its result.
func (s *State) Apply(index uint64, data []byte) Result {
	pre := predecode(data)
	s.mu.Lock()
	defer s.unlockAndNotify()
	return s.applyLocked(index, data, pre)
}

// ApplyBatch applies consecutive committed entries under one lock and returns
// one result per entry.
func (s *State) ApplyBatch(entries []Entry) []Result {
	out := make([]Result, len(entries))
	var pre map[int]*decoded
	for i, e := range entries {
		if d := predecode(e.Data); d != nil {
			if pre == nil {
				pre = make(map[int]*decoded)
			}
			pre[i] = d
		}
	}
	s.mu.Lock()
	defer s.unlockAndNotify()
	for i, e := range entries {
		if e.Data == nil {
			s.applied = e.Index
			continue
		}
		out[i] = s.applyLocked(e.Index, e.Data, pre[i])
	}
	return out
}

// predecode decodes and validates, before the lock is taken, an entry whose
// decoding is heavy: a restore carries a whole snapshot, and readers must
// not wait while it is parsed. Decoding depends on nothing but the bytes.
// Every other entry gets nil and is decoded under the lock, as is one that
// does not decode (applyLocked deals with that).
func predecode(data []byte) *decoded {
	if len(data) < 2 || Op(data[1]) != OpRestore {
		return nil
	}
	cmd, err := decode(data)
	if err != nil {
		return nil
	}
	_ = cmd.Payload.Validate() // parses the backup once; the result is kept
	return &cmd
}

// applyLocked applies one entry; pre is the entry already decoded, or nil.
func (s *State) applyLocked(index uint64, data []byte, pre *decoded) Result {
	s.applied = index
	var (
		cmd decoded
		err error
	)
	if pre != nil {
		cmd = *pre
	} else {
		cmd, err = decode(data)
	}
	if err != nil {
		var unknown errUnknownOp
		if errors.As(err, &unknown) && unknown.op&opIgnorable != 0 {
			return Result{Index: index}
		}
		// Every replica decodes the same bytes; a node that cannot must stop
		// rather than silently diverge from the others.
		panic(fmt.Sprintf("fsm: cannot apply log entry %d: %v", index, err))
	}
	s.idem.expire(cmd.Time)
	if cmd.IdempotencyKey != "" {
		if prev := s.idem.get(cmd.IdempotencyKey, cmd.Time); prev != nil {
			if prev.fp != cmd.fingerprint {
				return Result{Index: index, Err: errorf(CodeIdempotencyMismatch,
					"Idempotency-Key %q was first used for a different request", cmd.IdempotencyKey)}
			}
			r := s.replay(prev.result)
			r.Replayed = true
			return r
		}
	}
	res := Result{Index: index}
	s.now, s.maxDocSize = cmd.Time, cmd.MaxDocSize
	if err := cmd.Payload.Validate(); err != nil {
		res.Err = err
	} else {
		res.Value, res.Err = cmd.Payload.apply(s, index)
	}
	// Bad input does not use the key, wherever it is caught: a 400 decided
	// in the log (a partial queue config that crosses the stored bounds)
	// leaves the key free for the corrected retry, as a 400 caught before
	// the log does.
	if cmd.IdempotencyKey != "" && !isInputError(res.Err) {
		s.idem.put(&idemEntry{
			key:     cmd.IdempotencyKey,
			fp:      cmd.fingerprint,
			expires: cmd.Time + int64(cmd.KeyWindow),
			result:  remembered(res),
		})
	}
	return res
}

// AppliedIndex is the index of the last log entry applied.
func (s *State) AppliedIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// sortedNames returns the names of objects of kind k starting with prefix, in
// byte order. Map order must never reach an output.
func (s *State) sortedNames(k Kind, prefix string) []string {
	var names []string
	for name, o := range s.objects {
		if o.kind() == k && strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// pageOf cuts one page out of sorted names: those after after that keep
// (when not nil) accepts, at most limit of them; more reports whether any
// accepted name is left beyond the page.
func pageOf(sorted []string, after string, limit int, keep func(string) bool) (page []string, more bool) {
	i := sort.SearchStrings(sorted, after)
	if i < len(sorted) && sorted[i] == after {
		i++
	}
	for _, name := range sorted[i:] {
		if keep != nil && !keep(name) {
			continue
		}
		if len(page) == limit {
			return page, true
		}
		page = append(page, name)
	}
	return page, false
}

func isInputError(err error) bool {
	return errors.Is(err, ErrBadRequest) || errors.Is(err, ErrInvalidName) || errors.Is(err, ErrTooLarge)
}

// sortedKeys returns m's keys in byte order, for outputs and encodings that
// must not depend on map order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
