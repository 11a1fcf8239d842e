package fsm

// Fuzz targets for the two decoders that read bytes from disk or the network:
// log entries (decode) and snapshots (Restore).
//
//	go test -run='^$' -fuzz=FuzzDecode -fuzztime=20s ./fsm
//	go test -run='^$' -fuzz=FuzzSnapshotRestore -fuzztime=20s ./fsm

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"
)

const fuzzTime = int64(1_767_225_600_000_000_000)

func fuzzPtr[T any](v T) *T { return &v }

// fuzzCommands is one command of every kind, with and without optional
// fields and keys, and with extreme values.
func fuzzCommands() []Command {
	payloads := []Payload{
		CounterNext{ID: "a", Count: 1},
		CounterNext{ID: "ids:node-1@dc.x", Count: MaxMintCount},
		CounterAdd{ID: "a", Delta: -5},
		CounterAdd{ID: "b", Delta: math.MaxInt64, Default: fuzzPtr(int64(math.MinInt64))},
		CounterSet{ID: "a", Value: fuzzPtr(int64(7))},
		CounterSet{ID: "c", Value: fuzzPtr(int64(-1)), Increment: fuzzPtr(int64(MaxIncrement)), Offset: fuzzPtr(int64(math.MinInt64)),
			Monotonic: fuzzPtr(true), IfValue: fuzzPtr(int64(0))},
		CounterSet{ID: "c", Monotonic: fuzzPtr(false)},
		CounterDelete{ID: "a"},
		CounterDelete{ID: "c", Force: true},
	}
	var out []Command
	for i, p := range payloads {
		out = append(out, Command{Payload: p, Time: fuzzTime + int64(i)})
		out = append(out, Command{Payload: p, Time: fuzzTime + int64(i), IdempotencyKey: "key-1", KeyWindow: 10 * time.Minute})
	}
	return out
}

func FuzzDecode(f *testing.F) {
	for _, c := range fuzzCommands() {
		data, err := Encode(c)
		if err != nil {
			f.Fatalf("Encode(%+v): %v", c, err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{formatVersion})
	f.Add([]byte{formatVersion, byte(opIgnorable | 0x05), 0, 0, 0})
	f.Add([]byte{formatVersion, 0x7f, 0, 0, 0})
	f.Add([]byte{2, byte(OpCounterNext), 0, 0, 0, 1, 'a', 2})

	f.Fuzz(func(t *testing.T, data []byte) {
		dec, err := decode(data)
		if err != nil {
			var unknown errUnknownOp
			if errors.As(err, &unknown) && unknown.op&opIgnorable != 0 {
				// An op this build does not know but may skip: Apply moves
				// the index and changes nothing else.
				s := fuzzState(t)
				list, _ := s.Counters("")
				r := s.Apply(100, data)
				if r.Index != 100 || r.Value != nil || r.Err != nil || r.Replayed {
					t.Fatalf("ignorable op %d: Apply = %+v", unknown.op, r)
				}
				after, applied := s.Counters("")
				if applied != 100 || !propSameList(after, list) {
					t.Fatalf("ignorable op %d changed the state", unknown.op)
				}
				return
			}
			// Anything else undecodable must stop the node, not be skipped.
			func() {
				defer func() {
					if recover() == nil {
						t.Fatalf("Apply accepted an entry decode rejects (%v)", err)
					}
				}()
				New().Apply(1, data)
			}()
			return
		}
		if dec.Payload == nil {
			t.Fatalf("decode succeeded without a payload: %x", data)
		}
		if (dec.IdempotencyKey == "") != (dec.fingerprint == fingerprint{}) {
			t.Fatalf("key %q with fingerprint %x", dec.IdempotencyKey, dec.fingerprint)
		}

		// Whatever decodes must apply without panicking; Apply validates
		// again and refuses invalid input with the same error Validate gives.
		r := New().Apply(1, data)
		if r.Index != 1 || r.Replayed {
			t.Fatalf("Apply = %+v", r)
		}
		verr := dec.Command.Validate()
		if verr != nil {
			var want, got *Error
			if !errors.As(verr, &want) {
				t.Fatalf("Validate returned a %T: %v", verr, verr)
			}
			// An invalid key is only checked by Command.Validate (before the
			// log), so Apply may accept such a payload.
			if CheckIdempotencyKey(dec.IdempotencyKey) == nil || dec.IdempotencyKey == "" {
				if !errors.As(r.Err, &got) || got.Code != want.Code || r.Value != nil {
					t.Fatalf("Validate says %s, Apply returned %+v", want.Code, r)
				}
			}
			return
		}

		// A valid command survives a round trip through Encode.
		enc, err := Encode(dec.Command)
		if err != nil {
			t.Fatalf("Encode of a valid decoded command: %v", err)
		}
		again, err := decode(enc)
		if err != nil {
			t.Fatalf("decode(Encode(decode(x))): %v", err)
		}
		if !fuzzSameCommand(again.Command, dec.Command) {
			t.Fatalf("round trip changed the command:\n got  %s\n want %s", propDescribe(again.Command), propDescribe(dec.Command))
		}
		if again.KeyWindow != dec.KeyWindow || again.Time != dec.Time || again.IdempotencyKey != dec.IdempotencyKey {
			t.Fatalf("round trip changed the header: %+v vs %+v", again.Command, dec.Command)
		}
		if enc2, err := Encode(again.Command); err != nil || !bytes.Equal(enc2, enc) {
			t.Fatalf("Encode is not stable: %x vs %x (%v)", enc2, enc, err)
		}
		// The fingerprint ignores the leader-stamped fields, so a retry of
		// the same request stamped at another time still matches.
		retry := again.Command
		retry.Time ^= 1 << 40
		retry.KeyWindow += time.Second
		renc, err := Encode(retry)
		if err != nil {
			t.Fatalf("Encode retry: %v", err)
		}
		rdec, err := decode(renc)
		if err != nil {
			t.Fatalf("decode retry: %v", err)
		}
		if rdec.fingerprint != again.fingerprint {
			t.Fatalf("a retry at another time has a different fingerprint")
		}
	})
}

// fuzzSameCommand compares commands field by field, following pointers.
func fuzzSameCommand(a, b Command) bool {
	if a.Time != b.Time || a.KeyWindow != b.KeyWindow || a.IdempotencyKey != b.IdempotencyKey {
		return false
	}
	eqInt := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqBool := func(x, y *bool) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	switch pa := a.Payload.(type) {
	case CounterNext:
		pb, ok := b.Payload.(CounterNext)
		return ok && pa == pb
	case CounterAdd:
		pb, ok := b.Payload.(CounterAdd)
		return ok && pa.ID == pb.ID && pa.Delta == pb.Delta && eqInt(pa.Default, pb.Default)
	case CounterSet:
		pb, ok := b.Payload.(CounterSet)
		return ok && pa.ID == pb.ID && eqInt(pa.Value, pb.Value) && eqInt(pa.Increment, pb.Increment) &&
			eqInt(pa.Offset, pb.Offset) && eqBool(pa.Monotonic, pb.Monotonic) && eqInt(pa.IfValue, pb.IfValue)
	case CounterDelete:
		pb, ok := b.Payload.(CounterDelete)
		return ok && pa == pb
	}
	return false
}

// fuzzState builds a state holding counters of every shape and remembered
// results of every kind: a counter, a mint, a delete (nil), a refusal, and a
// conflict carrying the current counter.
func fuzzState(tb testing.TB) *State {
	tb.Helper()
	s := New()
	cmds := []Command{
		{Payload: CounterNext{ID: "a", Count: 3}, IdempotencyKey: "mint"},
		{Payload: CounterSet{ID: "m", Value: fuzzPtr(int64(math.MaxInt64 - 1)), Increment: fuzzPtr(int64(3)), Offset: fuzzPtr(int64(-7)), Monotonic: fuzzPtr(true)}, IdempotencyKey: "set"},
		{Payload: CounterAdd{ID: "n", Delta: -3, Default: fuzzPtr(int64(math.MinInt64 + 5))}, IdempotencyKey: "add"},
		{Payload: CounterNext{ID: "m", Count: 1}, IdempotencyKey: "overflow"},
		{Payload: CounterSet{ID: "a", Value: fuzzPtr(int64(1)), IfValue: fuzzPtr(int64(99))}, IdempotencyKey: "conflict"},
		{Payload: CounterAdd{ID: "gone", Delta: 1}},
		{Payload: CounterDelete{ID: "gone"}, IdempotencyKey: "delete"},
		{Payload: CounterAdd{ID: "short", Delta: 1}, IdempotencyKey: "short-window"},
	}
	for i, c := range cmds {
		c.Time = fuzzTime + int64(i)*int64(time.Second)
		c.KeyWindow = 10 * time.Minute
		if c.IdempotencyKey == "short-window" {
			c.KeyWindow = time.Millisecond
		}
		data, err := Encode(c)
		if err != nil {
			tb.Fatalf("Encode(%s): %v", propDescribe(c), err)
		}
		if r := s.Apply(uint64(10+i), data); r.Err != nil && c.IdempotencyKey != "overflow" && c.IdempotencyKey != "conflict" {
			tb.Fatalf("%s: %v", propDescribe(c), r.Err)
		}
	}
	return s
}

func fuzzSnapshotBytes(tb testing.TB, s *State) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		tb.Fatalf("WriteTo: %v", err)
	}
	return buf.Bytes()
}

func FuzzSnapshotRestore(f *testing.F) {
	full := fuzzSnapshotBytes(f, fuzzState(f))
	f.Add(full)
	f.Add(fuzzSnapshotBytes(f, New()))
	f.Add(full[:len(full)/2])
	f.Add(full[:len(full)-1])
	f.Add([]byte(snapshotMagic))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		s := fuzzState(t)
		before := fuzzSnapshotBytes(t, s)
		beforeList, beforeApplied := s.Counters("")

		if err := s.Restore(bytes.NewReader(data)); err != nil {
			if after := fuzzSnapshotBytes(t, s); !bytes.Equal(after, before) {
				t.Fatalf("failed Restore (%v) changed the state", err)
			}
			list, applied := s.Counters("")
			if applied != beforeApplied || !propSameList(list, beforeList) {
				t.Fatalf("failed Restore (%v) changed reads", err)
			}
			return
		}

		// A restored state reads, and snapshots again to something that
		// restores to the same state.
		snap := s.Snapshot()
		list, applied := s.Counters("")
		if applied != snap.AppliedIndex() || s.AppliedIndex() != applied {
			t.Fatalf("applied index: Counters %d, Snapshot %d, AppliedIndex %d", applied, snap.AppliedIndex(), s.AppliedIndex())
		}
		for _, c := range list {
			got, _, err := s.Counter(c.ID)
			if err != nil || *got != *c {
				t.Fatalf("Counter(%q) = %+v, %v; listed as %+v", c.ID, got, err, c)
			}
		}
		var buf bytes.Buffer
		if _, err := snap.WriteTo(&buf); err != nil {
			t.Fatalf("WriteTo after Restore: %v", err)
		}
		again := New()
		if err := again.Restore(&buf); err != nil {
			t.Fatalf("restoring a re-written snapshot: %v", err)
		}
		if !again.Snapshot().Equal(snap) {
			t.Fatalf("snapshot round trip after Restore changed the state")
		}
	})
}
