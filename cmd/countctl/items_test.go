package main

import (
	"encoding/json"
	"testing"

	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func TestItemsCommands(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	r := ctl(t, n.URL, "items", "add", "t1", "i-1", "i/2", "i-1")
	wantSuccess(t, r, nil)
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m["tenant"] != "t1" || m["added"] != float64(2) || m["duplicates"] != float64(1) || m["cluster"] != "countd" || m["index"] == float64(0) {
		t.Errorf("items add: %s", r.stdout)
	}
	if r := ctl(t, n.URL, "-o", "text", "items", "add", "t1", "i-1", "i-3"); r.code != 0 || r.stdout != "1\n" {
		t.Errorf("items add -o text: %s", r)
	}
	if r := ctl(t, n.URL, "-o", "text", "items", "count", "t1"); r.code != 0 || r.stdout != "3\n" {
		t.Errorf("items count -o text: %s", r)
	}
	r = ctl(t, n.URL, "items", "count", "new-tenant", "--stale")
	if err := json.Unmarshal([]byte(r.stdout), &m); r.code != 0 || err != nil || m["tenant"] != "new-tenant" || m["count"] != float64(0) || m["cluster"] != "countd" {
		t.Errorf("items count: %s", r)
	}
	// Item IDs that look like negative numbers are IDs, not flags.
	if r := ctl(t, n.URL, "-o", "text", "items", "add", "t2", "-5"); r.code != 0 || r.stdout != "1\n" {
		t.Errorf("items add t2 -5: %s", r)
	}
	for _, args := range [][]string{
		{"items", "add", "t1", "ok", "bad id"},
		{"items", "add", "a b", "x"},
		{"items", "count", "a b"},
	} {
		wantFailure(t, ctl(t, n.URL, args...), 1, args)
	}
	if r := ctl(t, n.URL, "-o", "text", "items", "count", "t1"); r.stdout != "3\n" {
		t.Errorf("a rejected batch was counted: %s", r)
	}
}
