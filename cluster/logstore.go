package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/segment"
	"go.etcd.io/bbolt"
)

// Raft log stores a data dir can hold (Config.LogStore).
const (
	// LogStoreWAL is hashicorp/raft-wal: segment files appended with one
	// fsync per batch of entries, in dir "wal". The default for a new
	// data dir.
	LogStoreWAL = "wal"
	// LogStoreBolt is hashicorp/raft-boltdb: one bolt B+tree file,
	// "raft.db", with two fsyncs per batch (data, then meta page).
	LogStoreBolt = "bolt"
)

// Where each store keeps its files inside the data dir.
const (
	walDirName = "wal"
	boltDBName = "raft.db"
)

// MaxWALEntry is the largest log entry raft-wal stores (its records are at
// most 64 MiB). A backup restore is one entry, so on a wal node a backup
// may be at most this large, less the command header (MaxRestoreFor).
const MaxWALEntry = int64(segment.MaxEntrySize)

// logStore is an open Raft log and stable store.
type logStore struct {
	kind   string
	logs   raft.LogStore
	stable raft.StableStore
	close  func() error
}

// chooseLogStore says which store a data dir uses: the one whose files it
// already holds, else want. A data dir never changes store by itself: a
// node with an existing raft.db keeps working on bolt whatever the flag
// says, and one with a wal keeps its wal.
func chooseLogStore(dataDir, want string) (string, error) {
	hasBolt, err := exists(filepath.Join(dataDir, boltDBName))
	if err != nil {
		return "", err
	}
	hasWAL, err := exists(filepath.Join(dataDir, walDirName))
	if err != nil {
		return "", err
	}
	switch {
	case hasBolt && hasWAL:
		return "", fmt.Errorf("data dir %s holds both a bolt log (%s) and a wal (%s/); it can only be one node's: remove the one that is not in use",
			dataDir, boltDBName, walDirName)
	case hasBolt:
		return LogStoreBolt, nil
	case hasWAL:
		return LogStoreWAL, nil
	}
	return want, nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for %s: %w", path, err)
	}
	return true, nil
}

// openLogStore opens the data dir's log store of the given kind, behind
// the bounded log cache.
func openLogStore(dataDir, kind string) (*logStore, error) {
	switch kind {
	case LogStoreWAL:
		dir := filepath.Join(dataDir, walDirName)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create wal dir: %w", err)
		}
		w, err := wal.Open(dir)
		if err != nil {
			return nil, fmt.Errorf("open raft log %s: %w", dir, err)
		}
		return &logStore{kind: kind, logs: newLogCache(logCacheSlots, w), stable: w, close: w.Close}, nil
	case LogStoreBolt:
		path := filepath.Join(dataDir, boltDBName)
		bolt, err := raftboltdb.New(raftboltdb.Options{
			Path: path,
			BoltOptions: &bbolt.Options{
				// A second process on the same data dir fails instead of
				// waiting forever for bolt's file lock.
				Timeout: time.Second,
				// Every commit still fsyncs the log; only bolt's freelist
				// is rebuilt on open instead of written on every commit,
				// which takes a page write off the hot path.
				NoFreelistSync: true,
				FreelistType:   bbolt.FreelistMapType,
			},
		})
		if err != nil {
			return nil, fmt.Errorf("open raft log %s: %w", path, err)
		}
		return &logStore{kind: kind, logs: newLogCache(logCacheSlots, bolt), stable: bolt, close: bolt.Close}, nil
	}
	return nil, fmt.Errorf("unknown log store %q: want %s or %s", kind, LogStoreWAL, LogStoreBolt)
}

// lockName is the file a running node holds locked in its data dir.
const lockName = "LOCK"

// lockDataDir takes an exclusive lock on the data dir, so a second node
// started on it fails at once rather than two of them writing one log
// (raft-wal's meta store would wait for bolt's lock forever).
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another countd (%s is locked)", dir, path)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}
