package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// writeFileAtomic creates or replaces path so that readers see either the
// old file or the whole new one, never a part: write fills a temporary file
// in the same directory (so the rename cannot cross file systems), which is
// given mode, synced and renamed over path, and the directory is synced so
// the rename survives a crash. Missing parent directories are created. On
// any error path is left as it was and the temporary file is removed.
func writeFileAtomic(path string, mode os.FileMode, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600, whatever the caller wants.
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not every file system syncs directories
		_ = d.Close()
	}
	return nil
}
