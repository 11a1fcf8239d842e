package httpapi

// The backup file that GET /v1/snapshot writes and POST /v1/snapshot reads:
// a small envelope around the state machine's snapshot stream, so that a
// truncated, corrupt or unrelated upload is refused with a clear 400 before
// anything reaches the log.
//
//	"COUNTD-BACKUP 1\n"
//	{"cluster":…,"node":…,"index":…,"created":…}\n   (one line of JSON, ≤ 4 KiB)
//	payload                                          (fsm snapshot stream)
//	footer: [8] payload length, big-endian
//	        [32] SHA-256 of everything before the footer
//	        [8] "CNTDBEND"
//
// The length and checksum trail the payload, so the server streams a backup
// in one pass, without holding a second copy of the encoded state.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/countd/countd/fsm"
)

const (
	backupMagic     = "COUNTD-BACKUP "
	backupVersion   = 1
	backupEndMagic  = "CNTDBEND"
	backupFooterLen = 8 + sha256.Size + len(backupEndMagic)
	// maxBackupHeader bounds the JSON header line.
	maxBackupHeader = 4 << 10
)

// backupHeader describes where and when a backup was taken. It is for
// people and logs: restore does not depend on it.
type backupHeader struct {
	Cluster string    `json:"cluster"`
	Node    string    `json:"node"`
	Index   uint64    `json:"index"`
	Created time.Time `json:"created"`
}

// writeBackup writes snap to w as a backup file.
func writeBackup(w io.Writer, h backupHeader, snap *fsm.Snapshot) error {
	line, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode backup header: %w", err)
	}
	sum := sha256.New()
	hw := io.MultiWriter(w, sum)
	if _, err := fmt.Fprintf(hw, "%s%d\n%s\n", backupMagic, backupVersion, line); err != nil {
		return fmt.Errorf("write backup header: %w", err)
	}
	n, err := snap.WriteTo(hw)
	if err != nil {
		return fmt.Errorf("write backup payload: %w", err)
	}
	footer := binary.BigEndian.AppendUint64(make([]byte, 0, backupFooterLen), uint64(n))
	footer = sum.Sum(footer)
	footer = append(footer, backupEndMagic...)
	if _, err := w.Write(footer); err != nil {
		return fmt.Errorf("write backup footer: %w", err)
	}
	return nil
}

// readBackup checks a whole backup file and returns its header and the
// snapshot stream inside. Its errors are sentences for the person who
// uploaded the file.
func readBackup(data []byte) (backupHeader, []byte, error) {
	var h backupHeader
	if len(data) == 0 {
		return h, nil, errors.New("the request body is empty; send a backup file from GET /v1/snapshot")
	}
	rest, ok := bytes.CutPrefix(data, []byte(backupMagic))
	if !ok {
		return h, nil, errors.New("this is not a countd backup file (it does not start with COUNTD-BACKUP); send a file from GET /v1/snapshot")
	}
	first, rest, ok := bytes.Cut(rest, []byte("\n"))
	if want := fmt.Sprint(backupVersion); !ok || string(first) != want {
		return h, nil, fmt.Errorf("backup format version %.20q is not supported; this node reads version %s", first, want)
	}
	i := bytes.IndexByte(rest[:min(len(rest), maxBackupHeader)], '\n')
	if i < 0 {
		return h, nil, errors.New("the backup's header line is missing or longer than 4 KiB; the file is truncated or corrupt")
	}
	dec := json.NewDecoder(bytes.NewReader(rest[:i]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return h, nil, fmt.Errorf("the backup's header line is not valid (%v); the file is corrupt", err)
	}
	rest = rest[i+1:]
	if len(rest) < backupFooterLen || string(rest[len(rest)-len(backupEndMagic):]) != backupEndMagic {
		return h, nil, errors.New("the backup has no end marker: the file is truncated (an interrupted download?)")
	}
	footer := rest[len(rest)-backupFooterLen:]
	payload := rest[:len(rest)-backupFooterLen]
	if n := binary.BigEndian.Uint64(footer); n != uint64(len(payload)) {
		return h, nil, fmt.Errorf("the backup says its payload is %d bytes but it is %d; the file is corrupt", n, len(payload))
	}
	sum := sha256.Sum256(data[:len(data)-backupFooterLen])
	if !bytes.Equal(sum[:], footer[8:8+sha256.Size]) {
		return h, nil, errors.New("the backup's SHA-256 checksum does not match its content; the file is corrupt")
	}
	return h, payload, nil
}
