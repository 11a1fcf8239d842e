package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func TestZKConfigLines(t *testing.T) {
	members := []api.Ticket{
		{ProcessID: "zk3.example", Counter: 7},
		{ProcessID: "zk1.example", Counter: 1, Tags: map[string]string{"zone": "a"}},
		{ProcessID: "zk2.example", Counter: 3, Tags: map[string]string{tagZKQuorumPort: "2889", tagZKElectionPort: "3889", tagZKClientPort: "2182"}},
	}
	got, err := zkConfigLines(members, zkPorts{quorum: 2888, election: 3888})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"server.1=zk1.example:2888:3888",
		"server.3=zk2.example:2889:3889;2182",
		"server.7=zk3.example:2888:3888",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if members[0].Counter != 7 {
		t.Error("zkConfigLines reordered its input")
	}

	got, err = zkConfigLines(members, zkPorts{quorum: 12888, election: 13888, client: 2181})
	want = []string{
		"server.1=zk1.example:12888:13888;2181",
		"server.3=zk2.example:2889:3889;2182",
		"server.7=zk3.example:12888:13888;2181",
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("with a client port: %q, %v", got, err)
	}
	// One override alone keeps the other values from the flags.
	got, err = zkConfigLines([]api.Ticket{{ProcessID: "h", Counter: 2, Tags: map[string]string{tagZKElectionPort: "4000"}}}, zkPorts{quorum: 2888, election: 3888})
	if err != nil || !slices.Equal(got, []string{"server.2=h:2888:4000"}) {
		t.Errorf("election port override: %q, %v", got, err)
	}
	if got, err := zkConfigLines(nil, zkPorts{quorum: 2888, election: 3888}); err != nil || len(got) != 0 {
		t.Errorf("no members: %q, %v", got, err)
	}
	for _, bad := range []string{"", "x", "0", "65536", "-1", "2888 "} {
		_, err := zkConfigLines([]api.Ticket{{ProcessID: "h", Counter: 1, Tags: map[string]string{tagZKQuorumPort: bad}}}, zkPorts{quorum: 2888, election: 3888})
		if err == nil || !strings.Contains(err.Error(), tagZKQuorumPort) {
			t.Errorf("tag %s=%q: want an error naming the tag, got %v", tagZKQuorumPort, bad, err)
		}
	}
}

func TestParseZKPorts(t *testing.T) {
	if p, err := parseZKPorts("2888:3888"); err != nil || p != (zkPorts{quorum: 2888, election: 3888}) {
		t.Errorf("2888:3888: %+v, %v", p, err)
	}
	if p, err := parseZKPorts("1:65535"); err != nil || p != (zkPorts{quorum: 1, election: 65535}) {
		t.Errorf("1:65535: %+v, %v", p, err)
	}
	for _, bad := range []string{"", ":", "2888", "2888:", ":3888", "2888:3888:1", "a:b", "0:1", "1:65536", " 1:2"} {
		var ue usageError
		if _, err := parseZKPorts(bad); !errors.As(err, &ue) {
			t.Errorf("%q: want a usage error, got %v", bad, err)
		}
	}
}

func TestParseTags(t *testing.T) {
	got, err := parseTags([]string{"zone=a", "empty=", "eq=a=b"})
	if err != nil || !reflect.DeepEqual(got, map[string]string{"zone": "a", "empty": "", "eq": "a=b"}) {
		t.Errorf("parseTags: %v, %v", got, err)
	}
	if got, err := parseTags(nil); err != nil || got != nil {
		t.Errorf("no tags: %v, %v", got, err)
	}
}

func TestWriteMyID(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etc", "zookeeper", "conf", "myid")
	if err := writeMyID(path, 3); err != nil {
		t.Fatalf("writeMyID with missing parents: %v", err)
	}
	checkMyID(t, path, "3\n")
	if err := writeMyID(path, 254); err != nil {
		t.Fatalf("writeMyID over an existing file: %v", err)
	}
	checkMyID(t, path, "254\n")
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 || entries[0].Name() != "myid" {
		t.Errorf("the directory should hold only myid (no temporary file left): %v, %v", entries, err)
	}

	// A failure leaves neither a partial file nor a temporary one.
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeMyID(filepath.Join(blocker, "myid"), 1); err == nil || !strings.Contains(err.Error(), "--myid-file") {
		t.Errorf("a parent that is a file: want an error naming --myid-file, got %v", err)
	}
	target := filepath.Join(dir, "isdir")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeMyID(target, 1); err == nil {
		t.Error("writing over a directory succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("a failed write left files behind: %v", entries)
	}
}

func checkMyID(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != want {
		t.Errorf("%s holds %q (%v), want %q", path, b, err, want)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("%s mode %v (%v), want 0644", path, st.Mode(), err)
	}
}

// ticketKeys are the fields of a ticket, in the order countctl prints them.
var ticketKeys = []string{"id", "process_id", "counter", "position", "tags", "fencing_token", "index", "cluster"}

// jsonKeys returns an object's keys in the order they appear.
func jsonKeys(t *testing.T, s string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %q", s)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("bad JSON %q: %v", s, err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("bad JSON %q: %v", s, err)
		}
	}
	return keys
}

func TestQueueCommands(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	myid := filepath.Join(t.TempDir(), "conf", "myid")

	args := []string{"-i", "zk", "queue", "-p", "zk1.example", "join", "--tag", "zone=a", "--tag", "rack=r1", "--myid-file", myid}
	r := ctl(t, n.URL, args...)
	wantSuccess(t, r, args)
	if keys := jsonKeys(t, r.stdout); !slices.Equal(keys, ticketKeys) {
		t.Errorf("ticket fields %q, want %q", keys, ticketKeys)
	}
	var tk ticketOutput
	if err := json.Unmarshal([]byte(r.stdout), &tk); err != nil {
		t.Fatal(err)
	}
	if tk.ID != "zk" || tk.ProcessID != "zk1.example" || tk.Counter != 1 || tk.Position != 0 || tk.FencingToken != 1 ||
		tk.Index == 0 || tk.Cluster != "countd" || !reflect.DeepEqual(tk.Tags, map[string]string{"zone": "a", "rack": "r1"}) {
		t.Errorf("join: %s", r.stdout)
	}
	checkMyID(t, myid, "1\n")

	// -p from the environment; -p before or after the subcommand.
	r = ctlEnv(t, env("COUNTD_PROCESS", "zk2.example"), "-a", n.URL, "-i", "zk", "-o", "text", "queue", "join", "--tag", "zk.quorum_port=2889")
	if r.code != 0 || r.stdout != "2\n" {
		t.Errorf("join with COUNTD_PROCESS, -o text: %s", r)
	}
	r = ctl(t, n.URL, "-i", "zk", "-o", "text", "queue", "join", "-p", "zk3.example")
	if r.code != 0 || r.stdout != "3\n" {
		t.Errorf("join -p after the subcommand: %s", r)
	}
	r = ctl(t, n.URL, "-i", "zk", "queue", "-p", "zk1.example", "join", "--tag", "zone=b")
	if r.code != 0 || !strings.Contains(r.stdout, `"counter": 1`) || !strings.Contains(r.stdout, `"zone": "a"`) || !strings.Contains(r.stdout, `"fencing_token": 3`) {
		t.Errorf("join again returns the same ticket with the current token: %s", r)
	}

	r = ctl(t, n.URL, "-i", "zk", "queue", "-p", "zk2.example", "get")
	wantSuccess(t, r, nil)
	if keys := jsonKeys(t, r.stdout); !slices.Equal(keys, ticketKeys) || !strings.Contains(r.stdout, `"position": 1`) {
		t.Errorf("get: %s", r.stdout)
	}
	if r := ctl(t, n.URL, "-i", "zk", "-o", "text", "queue", "-p", "zk3.example", "get", "--stale"); r.stdout != "3\n" {
		t.Errorf("get -o text: %s", r)
	}

	r = ctl(t, n.URL, "-i", "zk", "-o", "text", "queue", "list")
	wantSuccess(t, r, nil)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	want := [][]string{
		{"COUNTER", "POSITION", "PROCESS_ID", "TAGS", "SESSION"},
		{"1", "0", "zk1.example", "rack=r1,zone=a", "-"},
		{"2", "1", "zk2.example", "zk.quorum_port=2889", "-"},
		{"3", "2", "zk3.example", "-", "-"},
	}
	if len(lines) != len(want) {
		t.Fatalf("list -o text: %q", r.stdout)
	}
	for i, l := range lines {
		if f := strings.Fields(l); !slices.Equal(f, want[i]) {
			t.Errorf("list line %d: %q, want %q", i, f, want[i])
		}
	}
	r = ctl(t, n.URL, "-i", "zk", "queue", "list")
	var q queueOutput
	if err := json.Unmarshal([]byte(r.stdout), &q); err != nil || q.ID != "zk" || len(q.Members) != 3 || q.FencingToken != 3 ||
		q.Cluster != "countd" || q.Members[2].Cluster != "countd" || q.Members[2].Tags == nil || q.Config.Min != 1 {
		t.Errorf("list JSON: %s (%v)", r.stdout, err)
	}

	r = ctl(t, n.URL, "-i", "zk", "queue", "zk-config", "--client-port", "2181")
	wantSuccess(t, r, nil)
	if r.stdout != "server.1=zk1.example:2888:3888;2181\nserver.2=zk2.example:2889:3888;2181\nserver.3=zk3.example:2888:3888;2181\n" {
		t.Errorf("zk-config: %q", r.stdout)
	}
	r = ctl(t, n.URL, "-i", "zk", "-o", "text", "queue", "zk-config", "--ports", "12888:13888")
	if r.code != 0 || r.stdout != "server.1=zk1.example:12888:13888\nserver.2=zk2.example:2889:13888\nserver.3=zk3.example:12888:13888\n" {
		t.Errorf("zk-config --ports: %s", r)
	}

	r = ctl(t, n.URL, "-i", "zk", "queue", "-p", "zk2.example", "leave")
	wantSuccess(t, r, nil)
	var l map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || l["id"] != "zk" || l["process_id"] != "zk2.example" || l["fencing_token"] != float64(4) || l["cluster"] != "countd" {
		t.Errorf("leave: %s", r.stdout)
	}
	if r := ctl(t, n.URL, "-i", "zk", "-o", "text", "queue", "-p", "zk3.example", "get"); r.stdout != "3\n" {
		t.Errorf("counters never change on a leave: %s", r)
	}

	r = ctl(t, n.URL, "-i", "ids", "-o", "text", "queue", "config", "--min", "1", "--max", "2", "--reuse")
	wantSuccess(t, r, nil)
	if f := strings.Fields(r.stdout); !slices.Equal(f, []string{"MIN", "MAX", "REUSE", "1", "2", "true"}) {
		t.Errorf("config -o text: %q", r.stdout)
	}
	r = ctl(t, n.URL, "-i", "ids", "queue", "config", "--reuse=false")
	if r.code != 0 || !strings.Contains(r.stdout, `"reuse": false`) || !strings.Contains(r.stdout, `"max": 2`) {
		t.Errorf("config --reuse=false keeps the range: %s", r)
	}

	wantSuccess(t, ctl(t, n.URL, "-i", "zk", "queue", "rm"), nil)
	if r := ctl(t, n.URL, "-i", "zk", "queue", "list"); r.code != 0 || !strings.Contains(r.stdout, `"members": []`) {
		t.Errorf("list after rm: %s", r)
	}
	if r := ctl(t, n.URL, "-i", "zk", "queue", "zk-config"); r.code != 0 || r.stdout != "" {
		t.Errorf("zk-config of an empty queue: %s", r)
	}
	wantSuccess(t, ctl(t, n.URL, "-i", "zk", "queue", "rm"), nil) // idempotent

	wantSuccess(t, ctl(t, n.URL, "-i", "ctr", "counter", "next"), nil)
	wantSuccess(t, ctl(t, n.URL, "-i", "full", "queue", "config", "--min", "1", "--max", "1"), nil)
	wantSuccess(t, ctl(t, n.URL, "-i", "full", "queue", "-p", "a", "join"), nil)
	wantSuccess(t, ctl(t, n.URL, "-i", "bad", "queue", "-p", "a", "join", "--tag", tagZKQuorumPort+"=x"), nil)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-i", "zk", "queue", "-p", "zk1.example", "leave"},
		{"-i", "zk", "queue", "-p", "zk1.example", "get"},
		{"-i", "zk", "queue", "-p", "a/b", "join"},
		{"-i", "a b", "queue", "list"},
		{"-i", "ctr", "queue", "-p", "a", "join"},
		{"-i", "full", "queue", "-p", "b", "join"},
		{"-i", "ids", "queue", "config", "--min", "5", "--max", "1"},
		{"-i", "bad", "queue", "zk-config"},
		{"-i", "zk", "queue", "-p", "a", "join", "--myid-file", filepath.Join(blocker, "myid")},
	} {
		wantFailure(t, ctl(t, n.URL, args...), 1, args)
	}
}

func TestQueueWait(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	wantSuccess(t, ctl(t, n.URL, "-i", "w", "queue", "-p", "p1", "join"), nil)

	// Already enough: no blocking at all.
	r := ctl(t, n.URL, "-i", "w", "-o", "text", "queue", "wait", "--members", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "p1") {
		t.Errorf("wait for members already there: %s", r)
	}
	if r := ctl(t, n.URL, "-i", "never-written", "queue", "wait", "--members", "0"); r.code != 0 {
		t.Errorf("wait --members 0: %s", r)
	}

	// --timeout bounds each request, not the wait: with 300ms requests the
	// wait goes on through several of them (counted where the node answers
	// them) and ends only when the third member joins.
	reads := func() float64 { return served(t, n.URL, "GET", "/v1/queues/:id") }
	before := reads()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := startCtl(ctx, "-a", n.URL, "-i", "w", "--timeout", "300ms", "queue", "wait", "--members", "3")
	wantSuccess(t, ctl(t, n.URL, "-i", "w", "queue", "-p", "p2", "join"), nil)
	harness.WaitFor(t, 20*time.Second, "the wait to go on through four requests", func() bool {
		if r, ok := w.exited(); ok {
			t.Fatalf("wait ended with 2 of 3 members: %s", r)
		}
		return reads()-before >= 4
	})
	if r, ok := w.exited(); ok {
		t.Fatalf("wait ended with 2 of 3 members: %s", r)
	}
	wantSuccess(t, ctl(t, n.URL, "-i", "w", "queue", "-p", "p3", "join"), nil)
	r = w.exit(t, "wait after the third member joined")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("wait: %s", r)
	}
	var q queueOutput
	if err := json.Unmarshal([]byte(r.stdout), &q); err != nil || len(q.Members) != 3 {
		t.Errorf("wait prints the queue: %s (%v)", r.stdout, err)
	}

	// Interrupted before the queue fills: a failure, in one line.
	ctx2, cancel2 := context.WithCancel(context.Background())
	w2 := startCtl(ctx2, "-a", n.URL, "-i", "w", "queue", "wait", "--members", "9")
	cancel2()
	r = w2.exit(t, "wait when interrupted")
	wantFailure(t, r, 1, []string{"queue", "wait", "--members", "9"})
	if !strings.Contains(r.stderr, "interrupted") {
		t.Errorf("stderr: %q", r.stderr)
	}

	// A name the server refuses ends the wait at once.
	args := []string{"-i", "a b", "queue", "wait", "--members", "1"}
	wantFailure(t, ctl(t, n.URL, args...), 1, args)
}

// TestQueueWaitThroughFailover: the wait keeps going while the leader it
// reads from is stopped.
func TestQueueWaitThroughFailover(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	leader := harness.WaitStable(t, nodes)
	addrs := leader.URL
	for _, f := range harness.FollowersOf(nodes, leader) {
		addrs += "," + f.URL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := startCtl(ctx, "-a", addrs, "-i", "fw", "--timeout", "2s", "queue", "wait", "--members", "2")
	wantSuccess(t, ctl(t, addrs, "-i", "fw", "queue", "-p", "a", "join"), nil)
	leader.Stop()
	wantSuccess(t, ctl(t, addrs, "-i", "fw", "queue", "-p", "b", "join"), nil)
	r := w.exit(t, "wait after the second member joined on the new leader")
	if r.code != 0 {
		t.Fatalf("wait: %s", r)
	}
	if !strings.Contains(r.stdout, `"process_id": "b"`) {
		t.Errorf("wait output: %s", r.stdout)
	}
}
