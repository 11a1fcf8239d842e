package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func counterValue(t *testing.T, base, id string) string {
	t.Helper()
	r := ctl(t, base, "-o", "text", "-i", id, "counter", "get")
	wantSuccess(t, r, nil)
	return strings.TrimSpace(r.stdout)
}

func TestSnapshotSaveAndRestore(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	dir := t.TempDir()
	path := filepath.Join(dir, "backups", "countd.backup")
	wantSuccess(t, ctl(t, n.URL, "-i", "ids", "counter", "next", "--count", "10"), nil)

	args := []string{"snapshot", "save", path}
	r := ctl(t, n.URL, args...)
	wantSuccess(t, r, args)
	var saved map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &saved); err != nil || saved["file"] != path || saved["cluster"] != "countd" || saved["index"] == float64(0) {
		t.Fatalf("save output: %s", r.stdout)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || float64(st.Size()) != saved["bytes"] {
		t.Fatalf("saved file: %v, %v; output %s", st, err, r.stdout)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("save left more than the backup behind: %v", entries)
	}

	wantSuccess(t, ctl(t, n.URL, "-i", "ids", "counter", "next", "--count", "5"), nil)
	args = []string{"snapshot", "restore", path}
	r = ctl(t, n.URL, args...)
	wantSuccess(t, r, args)
	var restored map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &restored); err != nil || restored["counters"] != float64(1) ||
		restored["backup_index"] != saved["index"] || restored["forced"] != false || restored["cluster"] != "countd" {
		t.Fatalf("restore output: %s", r.stdout)
	}
	if v := counterValue(t, n.URL, "ids"); v != "15" {
		t.Errorf("ids after a merge: %s, want the larger 15", v)
	}

	r = ctl(t, n.URL, "-o", "text", "snapshot", "restore", path, "--advance", "100")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "restored at index ") || !strings.Contains(r.stdout, "advanced by 100") {
		t.Errorf("restore --advance -o text: %s", r)
	}
	oneLine(t, "restore -o text", r.stdout)
	if v := counterValue(t, n.URL, "ids"); v != "115" {
		t.Errorf("ids after --advance 100: %s, want 115", v)
	}

	// Through stdout and stdin, verbatim.
	r = ctl(t, n.URL, "snapshot", "save", "-")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "COUNTD-BACKUP 1\n") || r.stderr != "" {
		t.Fatalf("save -: exit %d, stderr %q, stdout starts %q", r.code, r.stderr, r.stdout[:min(len(r.stdout), 20)])
	}
	piped := r.stdout
	wantSuccess(t, ctl(t, n.URL, "-i", "ids", "counter", "next"), nil)
	r = ctlIn(t, n.URL, piped, "snapshot", "restore", "-", "--force")
	wantSuccess(t, r, nil)
	if v := counterValue(t, n.URL, "ids"); v != "115" {
		t.Errorf("ids after a forced restore of the piped backup: %s, want 115", v)
	}
}

func TestSnapshotFailures(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	dir := t.TempDir()
	path := filepath.Join(dir, "good.backup")
	wantSuccess(t, ctl(t, n.URL, "snapshot", "save", path), nil)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// A save that fails leaves the old file as it was and nothing else.
	args := []string{"--timeout", "1s", "snapshot", "save", path}
	wantFailure(t, ctl(t, harness.DeadAddr(t), args...), 1, args)
	if now, err := os.ReadFile(path); err != nil || string(now) != string(good) {
		t.Errorf("a failed save changed the file: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a failed save left files behind: %v", entries)
	}

	truncated := filepath.Join(dir, "truncated.backup")
	if err := os.WriteFile(truncated, good[:len(good)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"snapshot", "restore", truncated},
		{"snapshot", "restore", filepath.Join(dir, "missing.backup")},
		{"snapshot", "restore", path, "--advance", "9223372036854775808"},
	} {
		r := ctl(t, n.URL, args...)
		wantFailure(t, r, 1, args)
	}
	if r := ctl(t, n.URL, "snapshot", "restore", truncated); !strings.Contains(r.stderr, "truncated") {
		t.Errorf("a truncated backup should be called truncated: %s", r.stderr)
	}

	dead := harness.DeadAddr(t)
	for _, args := range [][]string{
		{"snapshot"},
		{"snapshot", "bogus"},
		{"snapshot", "save"},
		{"snapshot", "save", "a", "b"},
		{"snapshot", "save", ""},
		{"snapshot", "save", "f", "--bogus"},
		{"snapshot", "restore"},
		{"snapshot", "restore", ""},
		{"snapshot", "restore", path, "--advance", "x"},
		{"snapshot", "restore", path, "--advance", "-5"},
		{"snapshot", "restore", path, "--advance"},
	} {
		wantFailure(t, ctl(t, dead, args...), 2, args)
	}
}
