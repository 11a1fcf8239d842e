package fsm

import (
	"bytes"
	"encoding/hex"
	"runtime"
	"testing"
)

func TestSnapshotRoundTrip(t *testing.T) {
	a := newApplier(t)
	a.do(CounterNext{ID: "a", Count: 10})
	a.do(CounterSet{ID: "b", Value: ptr(int64(-5)), Increment: ptr(int64(7)), Offset: ptr(int64(3)), Monotonic: ptr(true)})
	a.doKey(CounterAdd{ID: "c", Delta: 4}, "key-1")
	a.doKey(CounterSet{ID: "b", Value: ptr(int64(-9))}, "key-2") // refused, remembered
	a.doKey(CounterDelete{ID: "a", Force: true}, "key-3")
	a.doKey(CounterSet{ID: "c", IfValue: ptr(int64(0)), Value: ptr(int64(1))}, "key-4") // conflict with current

	snap := a.s.Snapshot()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	restored := New()
	if err := restored.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if !restored.Snapshot().Equal(snap) {
		t.Fatal("restored state differs from the snapshot")
	}
	if restored.AppliedIndex() != a.index {
		t.Fatalf("applied index %d, want %d", restored.AppliedIndex(), a.index)
	}
	if len(restored.idem.byKey) != 4 {
		t.Fatalf("restored %d idempotency keys, want 4", len(restored.idem.byKey))
	}
}

func TestRestoreRejectsGarbageAndKeepsState(t *testing.T) {
	a := newApplier(t)
	a.do(CounterNext{ID: "a", Count: 1})
	var buf bytes.Buffer
	if _, err := a.s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	for name, data := range map[string][]byte{
		"empty":     nil,
		"bad magic": []byte("NOTASNAP"),
		"truncated": good[:len(good)-1],
		"bad tag":   append(append([]byte{}, good[:len(good)-2]...), 99, 0),
	} {
		if err := a.s.Restore(bytes.NewReader(data)); err == nil {
			t.Fatalf("%s: restore accepted garbage", name)
		}
		if c := a.get("a"); c.Value != 1 {
			t.Fatalf("%s: failed restore changed state", name)
		}
	}
}

func TestRestoreRejectsBrokenRules(t *testing.T) {
	for name, hexData := range map[string]string{
		// A counter with increment 0 would divide by zero on the next mint.
		"increment 0": "434e5444534e4150010201050207016100000000000000",
	} {
		data, _ := hex.DecodeString(hexData)
		if err := New().Restore(bytes.NewReader(data)); err == nil {
			t.Fatalf("%s: restore accepted a snapshot that breaks the counter rules", name)
		}
	}
}

func TestRestoreHugeLengthDoesNotAllocate(t *testing.T) {
	data := append([]byte("CNTDSNAP"), 0x01, 0x02, 0x01, 0x00, 0x02, 0x80, 0x80, 0x80, 0x80, 0x04)
	allocs := testing.AllocsPerRun(1, func() { _ = New().Restore(bytes.NewReader(data)) })
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	if err := New().Restore(bytes.NewReader(data)); err == nil {
		t.Fatal("accepted a truncated record")
	}
	runtime.ReadMemStats(&ms)
	if grew := ms.TotalAlloc - before; grew > 1<<20 {
		t.Fatalf("a 14-byte snapshot made restore allocate %d bytes (%v allocs)", grew, allocs)
	}
}
