package httpapi

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/fsm"
)

func testBackup(t *testing.T) ([]byte, *fsm.Snapshot) {
	t.Helper()
	s := fsm.New()
	for i, p := range []fsm.Payload{
		fsm.CounterNext{ID: "ids", Count: 42},
		fsm.DocPut{Name: "cfg", Value: []byte(`{"a":1}`)},
	} {
		data, err := fsm.Encode(fsm.Command{Payload: p})
		if err != nil {
			t.Fatal(err)
		}
		s.Apply(uint64(i+1), data)
	}
	snap := s.Snapshot()
	var buf bytes.Buffer
	h := backupHeader{Cluster: "c1", Node: "n1", Index: snap.AppliedIndex(), Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := writeBackup(&buf, h, snap); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), snap
}

func TestBackupFileRoundTrip(t *testing.T) {
	file, snap := testBackup(t)
	if !bytes.HasPrefix(file, []byte("COUNTD-BACKUP 1\n{\"cluster\":\"c1\",\"node\":\"n1\",\"index\":2,")) {
		t.Fatalf("the file does not start with its readable header: %q", file[:min(len(file), 80)])
	}
	h, payload, err := readBackup(file)
	if err != nil {
		t.Fatal(err)
	}
	if h.Cluster != "c1" || h.Node != "n1" || h.Index != 2 || !h.Created.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("header %+v", h)
	}
	var want bytes.Buffer
	if _, err := snap.WriteTo(&want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(payload, want.Bytes()) {
		t.Error("the payload is not the snapshot stream")
	}
}

// TestBackupFileRefusesDamage cuts the file at every length and flips every
// byte: each damaged file must be refused with a sentence.
func TestBackupFileRefusesDamage(t *testing.T) {
	file, _ := testBackup(t)
	check := func(what string, data []byte) string {
		t.Helper()
		_, _, err := readBackup(data)
		if err == nil {
			t.Fatalf("%s: accepted", what)
		}
		msg := err.Error()
		if !strings.Contains(msg, " ") || len(msg) < 20 {
			t.Fatalf("%s: %q is not a sentence", what, msg)
		}
		return msg
	}
	for n := range len(file) {
		check("truncated to "+strconv.Itoa(n), file[:n])
	}
	for i := range file {
		damaged := bytes.Clone(file)
		damaged[i] ^= 0x20
		check("byte "+strconv.Itoa(i)+" flipped", damaged)
	}
	check("trailing data", append(bytes.Clone(file), 'x'))
	check("version 2", bytes.Replace(file, []byte("COUNTD-BACKUP 1"), []byte("COUNTD-BACKUP 2"), 1))
	// A footer that agrees with a shortened payload still fails the
	// checksum.
	_, payload, err := readBackup(file)
	if err != nil {
		t.Fatal(err)
	}
	short := bytes.Clone(file[:len(file)-backupFooterLen-1])
	footer := binary.BigEndian.AppendUint64(nil, uint64(len(payload)-1))
	msg := check("consistent length, wrong sum", append(append(append(short, footer...), make([]byte, 32)...), backupEndMagic...))
	if !strings.Contains(msg, "checksum") {
		t.Errorf("a wrong checksum was reported as %q", msg)
	}
}
