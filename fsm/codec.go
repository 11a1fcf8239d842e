package fsm

// A small hand-written binary codec: log entries are written once per write on
// every node and read on every apply, so they stay compact and cheap to
// decode (no reflection). Integers are varints; strings and byte slices are
// length-prefixed.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var errShort = errors.New("truncated data")

type encoder struct{ buf []byte }

func (e *encoder) byte(b byte)      { e.buf = append(e.buf, b) }
func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) string(s string)  { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) raw(b []byte)     { e.buf = append(e.buf, b...) }
func (e *encoder) bytes(b []byte)   { e.uvarint(uint64(len(b))); e.buf = append(e.buf, b...) }
func (e *encoder) bool(b bool)      { e.byte(boolByte(b)) }
func (e *encoder) optInt(p *int64) {
	e.bool(p != nil)
	if p != nil {
		e.varint(*p)
	}
}
func (e *encoder) optBool(p *bool) {
	e.bool(p != nil)
	if p != nil {
		e.bool(*p)
	}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// decoder reads what encoder wrote. The first error sticks: callers decode a
// whole record and check err once.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.fail(errShort)
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail(fmt.Errorf("bad uvarint: %w", errShort))
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail(fmt.Errorf("bad varint: %w", errShort))
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.fail(errShort)
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) string() string { return string(d.bytes()) }

// count reads how many elements follow and refuses a count the rest of the
// record cannot hold, each element taking at least minBytes: a corrupt
// count must not make a small record allocate a huge slice. It returns 0
// once the decoder has failed, so a loop over the count does nothing.
func (d *decoder) count(minBytes int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.buf)/minBytes) {
		d.fail(errShort)
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

func (d *decoder) bool() bool {
	switch b := d.byte(); b {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(fmt.Errorf("bad bool byte %d", b))
		return false
	}
}

func (d *decoder) optInt() *int64 {
	if !d.bool() {
		return nil
	}
	v := d.varint()
	return &v
}

func (d *decoder) optBool() *bool {
	if !d.bool() {
		return nil
	}
	v := d.bool()
	return &v
}

// done reports the sticky error, or an error if bytes are left over: a
// record must be consumed exactly.
// more reports whether bytes are left: an optional field a later version
// added at the end of an encoding is there.
func (d *decoder) more() bool { return d.err == nil && len(d.buf) > 0 }

func (d *decoder) done() error {
	if d.err != nil {
		return d.err
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("%d trailing bytes", len(d.buf))
	}
	return nil
}
