package fsm

// The node-wide byte bound on document change histories (SPEC §12,
// -watch-history-bytes). Each document keeps at most State.history versions
// of its own; together they keep at most historyLog.max bytes, and past that
// the oldest versions of any document go first, so one busy document cannot
// make the others' histories, or the node, grow without bound. A watcher
// that needs a version no longer kept gets a reset (DocumentSince).

import (
	"cmp"
	"slices"
	"unsafe"
)

// Per-version and per-key overheads a change costs beyond its strings and
// values: the structs, and the slots that point at them here and in the
// document's history.
const (
	changeOverhead    = int64(unsafe.Sizeof(Change{})) + int64(unsafe.Sizeof(histEntry{})) + 2*int64(unsafe.Sizeof(uintptr(0)))
	keyChangeOverhead = int64(unsafe.Sizeof(KeyChange{}))
)

// changeSize is what ch is counted as. Old and New share their bytes with
// the document's values, so this counts a version at most once more than
// it costs: the bound errs toward keeping less.
func changeSize(ch *Change) int64 {
	n := changeOverhead
	for _, k := range ch.Keys {
		n += keyChangeOverhead + int64(len(k.Key)+len(k.Old)+len(k.New))
	}
	return n
}

type histEntry struct {
	d  *document
	ch *Change
}

// historyLog is every kept change in log order, for dropping the oldest
// first across documents. A change a document has already dropped (its own
// version bound) stays here until it reaches the front or a compaction, and
// is then skipped.
type historyLog struct {
	max   int64 // bytes; DefaultWatchHistoryBytes unless Options set it
	bytes int64 // of the changes documents still keep
	live  int   // how many of fifo[head:] documents still keep
	fifo  []histEntry
	head  int
}

// add records that d kept ch as its newest version, then drops the oldest
// versions of any document while the total is over the bound.
func (h *historyLog) add(d *document, ch *Change) {
	ch.size = changeSize(ch)
	h.fifo = append(h.fifo, histEntry{d: d, ch: ch})
	h.bytes += ch.size
	h.live++
	for h.bytes > h.max && h.live > 0 {
		h.dropOldest()
	}
	h.compact()
}

// dropFront drops d's oldest kept version: its version bound is reached.
func (h *historyLog) dropFront(d *document) {
	h.bytes -= d.history[0].size
	h.live--
	d.popHistory()
}

// dropOldest drops the oldest version any document still keeps.
func (h *historyLog) dropOldest() {
	for h.head < len(h.fifo) {
		e := h.fifo[h.head]
		h.fifo[h.head] = histEntry{}
		h.head++
		if len(e.d.history) > 0 && e.d.history[0] == e.ch {
			h.bytes -= e.ch.size
			h.live--
			e.d.popHistory()
			return
		}
	}
}

// compact keeps the FIFO's length within a constant factor of what is
// live, so dropped prefixes and changes dropped by their document's own
// bound cost amortised O(1) per write.
func (h *historyLog) compact() {
	if n := len(h.fifo) - h.head; n <= 1024 || n <= 2*h.live {
		if h.head > 1024 && h.head*2 > len(h.fifo) {
			n := copy(h.fifo, h.fifo[h.head:])
			clear(h.fifo[n:])
			h.fifo, h.head = h.fifo[:n], 0
		}
		return
	}
	kept := h.fifo[:0]
	for _, e := range h.fifo[h.head:] {
		if e.d.keeps(e.ch) {
			kept = append(kept, e)
		}
	}
	clear(h.fifo[len(kept):])
	h.fifo, h.head = kept, 0
}

// rebuild starts over from the histories docs hold: a restore replaced
// documents this log points into.
func (h *historyLog) rebuild(docs map[string]*document) {
	h.fifo, h.head, h.bytes, h.live = nil, 0, 0, 0
	for _, d := range docs {
		for _, ch := range d.history {
			h.fifo = append(h.fifo, histEntry{d: d, ch: ch})
			h.bytes += ch.size
			h.live++
		}
	}
	slices.SortFunc(h.fifo, func(a, b histEntry) int {
		return cmp.Or(cmp.Compare(a.ch.Index, b.ch.Index), cmp.Compare(a.ch.Version, b.ch.Version))
	})
	for h.bytes > h.max && h.live > 0 {
		h.dropOldest()
	}
}

// keeps reports whether ch is still in d's history: versions kept are a
// contiguous run ending at the newest.
func (d *document) keeps(ch *Change) bool {
	return len(d.history) > 0 && ch.Version >= d.history[0].Version && ch.Version <= d.history[len(d.history)-1].Version &&
		d.history[ch.Version-d.history[0].Version] == ch
}

// popHistory drops d's oldest kept version. The dropped slot is not
// cleared: a watcher may still hold a slice of this array from
// DocumentSince, outside the lock. Instead the live tail moves to a new
// array once the dead prefix outgrows it, so a document that is not
// written again does not keep its dropped versions alive.
func (d *document) popHistory() {
	d.history = d.history[1:]
	d.dropped++
	switch {
	case len(d.history) == 0:
		d.history, d.dropped = nil, 0
	case d.dropped > len(d.history):
		d.history, d.dropped = slices.Clone(d.history), 0
	}
}
