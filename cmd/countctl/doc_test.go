package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

// ctlIn runs countctl against base with stdin.
func ctlIn(t *testing.T, base, stdin string, args ...string) result {
	t.Helper()
	return runCtl(t, stdin, env(), append([]string{"-a", base}, args...)...)
}

func TestDocCommands(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})

	r := ctl(t, n.URL, "doc", "put", "cfg", "--value", `{"b": 2, "a": 1}`, "--if-absent")
	wantSuccess(t, r, nil)
	if keys := jsonKeys(t, r.stdout); !slices.Equal(keys, []string{"name", "version", "value", "index", "cluster"}) {
		t.Errorf("document fields: %q", keys)
	}
	var d docOutput
	var value bytes.Buffer
	err := json.Unmarshal([]byte(r.stdout), &d)
	if err == nil {
		err = json.Compact(&value, d.Value)
	}
	if err != nil || d.Name != "cfg" || d.Version != 1 || value.String() != `{"a":1,"b":2}` || d.Index == 0 || d.Cluster != "countd" {
		t.Errorf("put: %s (%v)", r.stdout, err)
	}

	// stdin when no flag is given, -f FILE, and -f - for stdin.
	r = ctlIn(t, n.URL, "{\"a\": 1, \"b\": 3}\n", "-o", "text", "doc", "put", "cfg", "--if-match", "1")
	if r.code != 0 || r.stdout != "2\n" {
		t.Errorf("put from stdin, -o text: %s", r)
	}
	file := filepath.Join(t.TempDir(), "patch.json")
	if err := os.WriteFile(file, []byte(`{"b": null, "c": [1]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r = ctl(t, n.URL, "-o", "text", "doc", "patch", "cfg", "-f", file, "--if-match", "*")
	if r.code != 0 || r.stdout != "3\n" {
		t.Errorf("patch -f: %s", r)
	}
	r = ctlIn(t, n.URL, `{"d": true}`, "-o", "text", "doc", "patch", "cfg", "-f", "-")
	if r.code != 0 || r.stdout != "4\n" {
		t.Errorf("patch -f -: %s", r)
	}
	r = ctl(t, n.URL, "-o", "text", "doc", "get", "cfg")
	if r.code != 0 || r.stdout != `{"a":1,"c":[1],"d":true}`+"\n" {
		t.Errorf("get -o text: %s", r)
	}
	r = ctl(t, n.URL, "doc", "get", "cfg", "--stale")
	if r.code != 0 || !strings.Contains(r.stdout, `"version": 4`) {
		t.Errorf("get --stale: %s", r)
	}
	// --value wins over stdin, which is not read.
	r = ctlIn(t, n.URL, "not json", "-o", "text", "doc", "put", "other", "--value", `{}`)
	if r.code != 0 || r.stdout != "1\n" {
		t.Errorf("--value with stdin present: %s", r)
	}

	for _, tc := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"doc", "get", "absent"}},
		{"", []string{"doc", "put", "cfg", "--value", `{}`, "--if-absent"}},
		{"", []string{"doc", "put", "cfg", "--value", `{}`, "--if-match", "1"}},
		{"", []string{"doc", "patch", "cfg", "--value", `{}`, "--if-match", "3"}},
		{"", []string{"doc", "rm", "cfg", "--if-match", "3"}},
		{"", []string{"doc", "put", "cfg", "--value", `[1, 2]`}},
		{"", []string{"doc", "put", "a b", "--value", `{}`}},
		{"", []string{"doc", "put", "cfg", "-f", filepath.Join(t.TempDir(), "missing.json")}},
		{"{not json", []string{"doc", "put", "cfg"}},
		{"", []string{"doc", "put", "cfg"}},
	} {
		wantFailure(t, ctlIn(t, n.URL, tc.stdin, tc.args...), 1, tc.args)
	}
	if r := ctl(t, n.URL, "-o", "text", "doc", "get", "cfg"); !strings.Contains(r.stdout, `"d":true`) {
		t.Errorf("refused writes changed the document: %s", r)
	}

	r = ctl(t, n.URL, "doc", "rm", "cfg", "--if-match", "4")
	wantSuccess(t, r, nil)
	if r.stdout != "" {
		t.Errorf("rm prints nothing: %q", r.stdout)
	}
	wantSuccess(t, ctl(t, n.URL, "doc", "rm", "cfg"), nil) // absent: still fine
	args := []string{"doc", "get", "cfg"}
	wantFailure(t, ctl(t, n.URL, args...), 1, args)
	if r := ctl(t, n.URL, "-o", "text", "doc", "put", "cfg", "--value", `{}`); r.stdout != "6\n" {
		t.Errorf("versions continue after a delete (version 5): %s", r)
	}
}

// watchLine is one line of doc watch.
type watchLine struct {
	Name    string            `json:"name"`
	Event   string            `json:"event"`
	Version uint64            `json:"version"`
	Index   uint64            `json:"index"`
	Changes []json.RawMessage `json:"changes"`
	Value   json.RawMessage   `json:"value"`
}

// startWatch runs countctl doc watch in the background; stop interrupts it
// and returns its result.
func startWatch(t *testing.T, args ...string) (out *syncBuffer, stop func() result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := startCtl(ctx, args...)
	stop = func() result {
		cancel()
		return w.exit(t, "doc watch when interrupted")
	}
	t.Cleanup(func() { stop() })
	return &w.stdout, stop
}

func parseWatch(t *testing.T, s string) []watchLine {
	t.Helper()
	var out []watchLine
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if l == "" {
			continue
		}
		var w watchLine
		if err := json.Unmarshal([]byte(l), &w); err != nil {
			t.Fatalf("watch line %q: %v", l, err)
		}
		out = append(out, w)
	}
	return out
}

func lineCount(b *syncBuffer) int { return strings.Count(b.String(), "\n") }

func TestDocWatch(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	out, stop := startWatch(t, "-a", n.URL, "doc", "watch", "w")
	harness.WaitFor(t, 10*time.Second, "the first reset", func() bool { return lineCount(out) >= 1 })
	wantSuccess(t, ctl(t, n.URL, "doc", "put", "w", "--value", `{"a":1}`), nil)
	wantSuccess(t, ctl(t, n.URL, "doc", "patch", "w", "--value", `{"a":2,"b":"x"}`), nil)
	wantSuccess(t, ctl(t, n.URL, "doc", "rm", "w"), nil)
	harness.WaitFor(t, 10*time.Second, "four events", func() bool { return lineCount(out) >= 4 })
	r := stop()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("an interrupted watch exits 0 quietly: %s", r)
	}
	lines := parseWatch(t, r.stdout)
	if len(lines) != 4 {
		t.Fatalf("want 4 lines, got %q", r.stdout)
	}
	if l := lines[0]; l.Name != "w" || l.Event != "reset" || l.Version != 0 || string(l.Value) != "null" || l.Changes != nil {
		t.Errorf("first line: %+v", l)
	}
	wantChanges := [][]string{
		{`{"type":"added","key":"a","new":1}`},
		{`{"type":"modified","key":"a","old":1,"new":2}`, `{"type":"added","key":"b","new":"x"}`},
		{`{"type":"removed","key":"a","old":2}`, `{"type":"removed","key":"b","old":"x"}`},
	}
	for i, l := range lines[1:] {
		if l.Event != "change" || l.Version != uint64(i+1) || l.Index == 0 || l.Value != nil {
			t.Errorf("line %d: %+v", i+2, l)
		}
		var got []string
		for _, c := range l.Changes {
			got = append(got, string(c))
		}
		if !slices.Equal(got, wantChanges[i]) {
			t.Errorf("line %d changes %q, want %q", i+2, got, wantChanges[i])
		}
	}

	// --since starts after that version, without a reset.
	out, stop = startWatch(t, "-a", n.URL, "doc", "watch", "w", "--since", "1")
	harness.WaitFor(t, 10*time.Second, "two events after version 1", func() bool { return lineCount(out) >= 2 })
	wantSuccess(t, ctl(t, n.URL, "doc", "put", "w", "--value", `{"c":3}`), nil)
	harness.WaitFor(t, 10*time.Second, "the new version", func() bool { return lineCount(out) >= 3 })
	lines = parseWatch(t, stop().stdout)
	if len(lines) != 3 || lines[0].Version != 2 || lines[0].Event != "change" || lines[2].Version != 4 {
		t.Errorf("watch --since 1: %+v", lines)
	}

	args := []string{"-a", n.URL, "doc", "watch", "a b"}
	wantFailure(t, ctlEnv(t, env(), args...), 1, args)
}

// TestDocWatchThroughFailover: doc watch keeps printing, without gaps, when
// the node it watches on stops.
func TestDocWatchThroughFailover(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	leader := harness.WaitStable(t, nodes)
	follower := harness.FollowersOf(nodes, leader)[0]
	out, stop := startWatch(t, "-a", follower.URL, "-v", "doc", "watch", "fw")
	harness.WaitFor(t, 10*time.Second, "the first reset", func() bool { return lineCount(out) >= 1 })
	wantSuccess(t, ctl(t, leader.URL, "doc", "put", "fw", "--value", `{"v":1}`), nil)
	harness.WaitFor(t, 10*time.Second, "version 1", func() bool { return lineCount(out) >= 2 })
	follower.Stop()
	for i := 2; i <= 4; i++ {
		wantSuccess(t, ctl(t, leader.URL, "doc", "patch", "fw", "--value", `{"v":`+string(rune('0'+i))+`}`), nil)
	}
	harness.WaitFor(t, 20*time.Second, "version 4 after the node stopped", func() bool { return lineCount(out) >= 5 })
	r := stop()
	if r.code != 0 || !strings.Contains(r.stderr, "retrying") {
		t.Errorf("watch through a failover: %s", r)
	}
	for i, l := range parseWatch(t, r.stdout) {
		if l.Version != uint64(i) {
			t.Errorf("line %d has version %d", i+1, l.Version)
		}
	}
}
