package checker

import (
	"testing"

	"github.com/countd/countd/test/jepsen-lite/history"
)

func held(token uint64, from, until int64) opt {
	return out(history.Output{Token: token, HeldFrom: from, HeldUntil: until})
}

func TestLockHoldsOneAtATime(t *testing.T) {
	b := &builder{}
	b.add(0, history.FHold, "lock1", 0, 50, ok, held(1, 10, 40))
	b.add(1, history.FHold, "lock1", 5, 90, ok, held(3, 45, 80)) // waited for the first
	// A hold that never got the lock says nothing.
	b.add(2, history.FHold, "lock1", 5, 200, unknown)
	// Another lock is checked on its own.
	b.add(2, history.FHold, "lock2", 0, 50, ok, held(1, 20, 30))
	wantClean(t, b.run(locks))
}

func TestLockChecksFlagTwoHoldersAndStaleTokens(t *testing.T) {
	overlap := new(builder).
		add(0, history.FHold, "lock1", 0, 50, ok, held(1, 10, 40)).
		add(1, history.FHold, "lock1", 5, 90, ok, held(2, 30, 80))
	wantFlagged(t, overlap.run(locks), CheckLock, "two holders at once")

	stale := new(builder).
		add(0, history.FHold, "lock1", 0, 50, ok, held(5, 10, 40)).
		add(1, history.FHold, "lock1", 5, 90, ok, held(5, 45, 80))
	wantFlagged(t, stale.run(locks), CheckLock, "fencing token did not rise")
}
