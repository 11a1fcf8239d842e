package cluster

// The stall watch guards the linearizable read's leadership check against
// a hole in hashicorp/raft's VerifyLeader (DESIGN.md, "Reads"): a verify
// is confirmed by the next reply from each follower, even a reply to a
// heartbeat or append sent before the verify began. Such a reply can only
// be dangerous after this process stopped running for long enough that
// the others could elect a new leader (SIGSTOP, a VM or scheduler stall):
// otherwise this node would have kept a quorum's contact, and the others
// would have refused to elect anyone, or lost it and stepped down after
// its lease. So a ticker notes every gap in this process's run, and for
// a while after one, leadership is confirmed by committing a log entry
// (raft.Barrier) instead: an entry appended after the read began is
// acknowledged only by replies sent after that.

import (
	"sync/atomic"
	"time"
)

// stallWatch notes the gaps in this process's run.
type stallWatch struct {
	start time.Time // the monotonic origin of the times below
	// tick is how often the ticker runs; a gap of threshold or more
	// between two ticks (or since the last one) is a stall, and confirms
	// go through the log for window after it ends.
	tick, threshold, window time.Duration
	lastTick                atomic.Int64 // since start, ns
	lastStallEnd            atomic.Int64 // since start, ns; 0: none yet
	stalls                  atomic.Int64
}

// newStallWatch sizes the watch from Raft's timing: a new leader needs the
// followers to miss the leader for a heartbeat timeout first, so a shorter
// gap cannot hide one; stale replies are read within moments of the
// process running again, and window leaves them an election timeout.
func newStallWatch(heartbeat, election time.Duration) *stallWatch {
	w := &stallWatch{
		start:     time.Now(),
		tick:      max(heartbeat/10, 5*time.Millisecond),
		threshold: heartbeat / 2,
		window:    election + heartbeat,
	}
	w.lastTick.Store(int64(time.Since(w.start)))
	return w
}

// run ticks until stop is closed.
func (w *stallWatch) run(stop <-chan struct{}) {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			w.observe(time.Since(w.start))
		}
	}
}

// observe records a tick at now (since start).
func (w *stallWatch) observe(now time.Duration) {
	if now-time.Duration(w.lastTick.Load()) >= w.threshold {
		w.lastStallEnd.Store(int64(now))
		w.stalls.Add(1)
	}
	w.lastTick.Store(int64(now))
}

// recent reports whether the process stalled within the window before
// now, or is only now running again after a stall the ticker has not seen
// yet (the read can run first).
func (w *stallWatch) recent() bool { return w.recentAt(time.Since(w.start)) }

// recentAt is recent at now (since start).
func (w *stallWatch) recentAt(now time.Duration) bool {
	if now-time.Duration(w.lastTick.Load()) >= w.threshold {
		return true
	}
	end := w.lastStallEnd.Load()
	return end != 0 && now-time.Duration(end) < w.window
}
