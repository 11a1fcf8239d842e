package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The pauses double from First up to the cap, each jittered to between half
// and all of its length, and start over on Reset.
func TestBackoffPauses(t *testing.T) {
	b := New(80 * time.Millisecond)
	check := func(want time.Duration) {
		t.Helper()
		for range 20 { // the jitter is random: look at several draws
			c := *b
			if got := c.pause(); got < want/2 || got > want {
				t.Fatalf("pause %s, want %s to %s", got, want/2, want)
			}
		}
		b.pause()
	}
	for _, ms := range []time.Duration{10, 20, 40, 80, 80} {
		check(ms * time.Millisecond)
	}
	b.Reset()
	check(First)
	if New(time.Nanosecond).max != First {
		t.Fatal("a cap below First must not shrink the pauses below it")
	}
}

// Wait and Sleep end when their context does, with its error, instead of
// sleeping on.
func TestWaitEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := New(time.Hour)
	b.next = time.Hour
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context: %v", err)
	}
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context: %v", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Fatalf("Sleep(0): %v", err)
	}
}
