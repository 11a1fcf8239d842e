package httpapi_test

// Backups: GET /v1/snapshot and POST /v1/snapshot on real nodes — the
// round trip, merge versus force, advance, refusals that change nothing,
// the restore body limit, followers, and a document watcher seeing a
// restore.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

var restoreKeys = []string{"index", "backup_index", "counters", "queues", "documents", "tenants", "forced", "advanced"}

// getBackup downloads a backup from url and checks the response headers.
func getBackup(tb testing.TB, url string) (file []byte, index uint64) {
	tb.Helper()
	r := send(tb, http.MethodGet, url, nil)
	wantOK(tb, r, http.StatusOK)
	index = indexOf(tb, r)
	if ct := r.header.Get("Content-Type"); ct != api.ContentTypeBackup {
		tb.Errorf("Content-Type %q, want %q", ct, api.ContentTypeBackup)
	}
	if cd, want := r.header.Get("Content-Disposition"), fmt.Sprintf(`attachment; filename="countd-countd-%d.backup"`, index); cd != want {
		tb.Errorf("Content-Disposition %q, want %q", cd, want)
	}
	if !bytes.HasPrefix(r.body, []byte("COUNTD-BACKUP 1\n")) {
		tb.Fatalf("not a backup file: %q", r.body[:min(len(r.body), 40)])
	}
	return r.body, index
}

// postBackup uploads file to url; headers are name, value pairs.
func postBackup(tb testing.TB, url string, file []byte, headers ...string) reply {
	tb.Helper()
	return send(tb, http.MethodPost, url, bytes.NewReader(file), append([]string{"Content-Type", api.ContentTypeBackup}, headers...)...)
}

func wantRestored(tb testing.TB, r reply) api.RestoreResult {
	tb.Helper()
	wantOK(tb, r, http.StatusOK)
	var res api.RestoreResult
	decodeStrict(tb, r.body, &res, restoreKeys...)
	if res.Index == 0 || res.Index != indexOf(tb, r) {
		tb.Errorf("restore index %d, %s %d", res.Index, api.HeaderIndex, indexOf(tb, r))
	}
	return res
}

// mintN mints count IDs of counter id on base.
func mintN(tb testing.TB, base, id string, count int) api.Mint {
	tb.Helper()
	m, _ := mint(tb, base, id, fmt.Sprintf("?count=%d", count))
	return m
}

func TestSnapshotSaveAndRestore(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	mintN(t, n.URL, "ids", 10)
	putDoc(t, n.URL, "cfg", `{"a":1}`)
	wantOK(t, sendJSON(t, http.MethodPost, n.URL+"/v1/queues/zk/join", `{"process_id":"p1"}`), http.StatusOK)
	wantOK(t, sendJSON(t, http.MethodPost, n.URL+"/v1/items", `[{"id":"i1","tenant":"t1"}]`), http.StatusOK)
	file, backupIndex := getBackup(t, n.URL+"/v1/snapshot")
	if applied := n.Node.State().AppliedIndex(); backupIndex != applied {
		t.Errorf("backup at %d, node applied %d", backupIndex, applied)
	}

	// Minting goes on after the backup; the merge must not take it back.
	if m := mintN(t, n.URL, "ids", 5); m.Value != 15 {
		t.Fatalf("mint after the backup: %+v", m)
	}
	putDoc(t, n.URL, "cfg", `{"a":2}`)
	mintN(t, n.URL, "extra", 3)

	res := wantRestored(t, postBackup(t, n.URL+"/v1/snapshot", file))
	if res.BackupIndex != backupIndex || res.Counters != 1 || res.Queues != 1 || res.Documents != 1 || res.Tenants != 1 || res.Forced || res.Advanced != 0 {
		t.Errorf("merge result %+v", res)
	}
	if c := getCounter(t, n.URL, "ids"); c.Value != 15 {
		t.Errorf("ids after a merge: %+v, want the larger 15", c)
	}
	if m := mintN(t, n.URL, "ids", 1); m.First != 16 {
		t.Errorf("mint after the merge: %+v, want 16", m)
	}
	if c := getCounter(t, n.URL, "extra"); c.Value != 3 {
		t.Errorf("a counter missing from the backup was not kept: %+v", c)
	}
	if d := getDoc(t, n.URL, "cfg"); d.Version != 3 || string(d.Value) != `{"a":1}` || d.Index != res.Index {
		t.Errorf("cfg after a merge: %+v, want the backup's value as version 3", d)
	}

	res = wantRestored(t, postBackup(t, n.URL+"/v1/snapshot?advance=1000", file))
	if res.Advanced != 1000 {
		t.Errorf("advance result %+v", res)
	}
	if c := getCounter(t, n.URL, "ids"); c.Value != 1016 {
		t.Errorf("ids after advance 1000: %+v, want 1016", c)
	}

	res = wantRestored(t, postBackup(t, n.URL+"/v1/snapshot?force=true", file))
	if !res.Forced {
		t.Errorf("force result %+v", res)
	}
	if c := getCounter(t, n.URL, "ids"); c.Value != 10 {
		t.Errorf("ids after a forced restore: %+v, want the backup's 10", c)
	}
	if c := getCounter(t, n.URL, "extra"); c.Value != 0 || c.Index != 0 {
		t.Errorf("extra survived a forced restore: %+v", c)
	}
	if d := getDoc(t, n.URL, "cfg"); d.Version != 1 || string(d.Value) != `{"a":1}` {
		t.Errorf("cfg after a forced restore: %+v", d)
	}
}

func TestSnapshotRefusals(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	mintN(t, n.URL, "ids", 10)
	mintN(t, n.URL, "x", 1)
	file, _ := getBackup(t, n.URL+"/v1/snapshot")
	flipped := bytes.Clone(file)
	flipped[len(flipped)/2] ^= 1
	url := n.URL + "/v1/snapshot"
	const key = "restore-key"

	for _, tc := range []struct {
		name  string
		query string
		body  []byte
	}{
		{"empty body", "", nil},
		{"not a backup", "", []byte(`{"counters":[]}`)},
		{"truncated", "", file[:len(file)-1]},
		{"cut in half", "", file[:len(file)/2]},
		{"a flipped byte", "", flipped},
		{"advance not a number", "?advance=many", file},
		{"negative advance", "?advance=-1", file},
		{"advance past int64", "?advance=9223372036854775808", file},
		{"force not a boolean", "?force=maybe", file},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := n.Node.State().Snapshot()
			r := postBackup(t, url+tc.query, tc.body, api.HeaderIdempotencyKey, key)
			checkError(t, r, http.StatusBadRequest, api.CodeBadRequest)
			if !n.Node.State().Snapshot().Equal(before) {
				t.Error("a refused upload changed the state")
			}
		})
	}
	// None of them used the key: the good upload with it is applied.
	wantRestored(t, postBackup(t, url, file, api.HeaderIdempotencyKey, key))

	// Rules decided in the log: kinds that differ, and an advance that
	// overflows. They change nothing but are remembered like any refusal.
	wantOK(t, send(t, http.MethodDelete, n.URL+"/v1/counters/x", nil), http.StatusNoContent)
	wantOK(t, sendJSON(t, http.MethodPost, n.URL+"/v1/queues/x/join", `{"process_id":"p"}`), http.StatusOK)
	checkError(t, postBackup(t, url, file), http.StatusConflict, api.CodeWrongType)
	checkError(t, postBackup(t, url+"?force=true&advance=9223372036854775800", file), http.StatusConflict, api.CodeOverflow)
	if c := getCounter(t, n.URL, "ids"); c.Value != 10 {
		t.Errorf("ids after refused restores: %+v", c)
	}
}

func TestSnapshotRestoreBodyLimit(t *testing.T) {
	// A backup is larger than any other request: MaxBody does not apply
	// to it, MaxRestore does.
	n := harness.StartInMem(t, httpapi.Config{MaxBody: 256, MaxRestore: 4096})
	putDoc(t, n.URL, "big", `{"pad":"`+strings.Repeat("x", 200)+`"}`)
	putDoc(t, n.URL, "big2", `{"pad":"`+strings.Repeat("y", 200)+`"}`)
	file, _ := getBackup(t, n.URL+"/v1/snapshot")
	if len(file) <= 256 || len(file) > 4096 {
		t.Fatalf("the test needs a backup between the two limits, got %d bytes", len(file))
	}
	wantRestored(t, postBackup(t, n.URL+"/v1/snapshot", file))
	wantRestored(t, send(t, http.MethodPost, n.URL+"/v1/snapshot", chunked{bytes.NewReader(file)}, "Content-Type", api.ContentTypeBackup))

	tooBig := append(bytes.Clone(file), make([]byte, 4096)...)
	checkError(t, postBackup(t, n.URL+"/v1/snapshot", tooBig), http.StatusRequestEntityTooLarge, api.CodeTooLarge)
	checkError(t, send(t, http.MethodPost, n.URL+"/v1/snapshot", chunked{bytes.NewReader(tooBig)}), http.StatusRequestEntityTooLarge, api.CodeTooLarge)
	// Other routes keep MaxBody.
	checkError(t, sendJSON(t, http.MethodPut, n.URL+"/v1/docs/big", `{"pad":"`+strings.Repeat("z", 300)+`"}`), http.StatusRequestEntityTooLarge, api.CodeTooLarge)
}

// TestSnapshotWatcherSeesRestore: a merge that changes a document reaches
// its watchers as the next version; a forced restore that moves it back
// reaches them as a reset.
func TestSnapshotWatcherSeesRestore(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	putDoc(t, n.URL, "cfg", `{"a":1,"b":true}`)
	file, _ := getBackup(t, n.URL+"/v1/snapshot")
	putDoc(t, n.URL, "cfg", `{"a":2,"b":true}`)

	w := openWatch(t, n.URL+"/v1/docs/cfg/watch?since=2")
	res := wantRestored(t, postBackup(t, n.URL+"/v1/snapshot", file))
	ch := wantChange(t, w.next(t), 3, keyChange{api.ChangeModified, "a", "2", "1"})
	if ch.Index != res.Index {
		t.Errorf("change at index %d, restore at %d", ch.Index, res.Index)
	}

	wantRestored(t, postBackup(t, n.URL+"/v1/snapshot?force=true", file))
	reset := wantReset(t, w.next(t))
	if reset.Version != 1 || string(reset.Value) != `{"a":1,"b":true}` {
		t.Errorf("reset after a forced restore: %+v %s", reset, reset.Value)
	}
}

func TestSnapshotOnFollowers(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	leader := harness.WaitStable(t, nodes)
	follower := harness.FollowersOf(nodes, leader)[0]
	mintN(t, leader.URL, "ids", 7)

	pq := "/v1/snapshot"
	checkRedirect(t, send(t, http.MethodGet, follower.URL+pq, nil), leader, pq)
	file, _ := getBackup(t, leader.URL+pq)

	// A stale backup is this node's copy, served by the follower itself.
	harness.WaitFor(t, 10*time.Second, "the follower to apply the mint", func() bool {
		c, _, err := follower.Node.State().Counter("ids")
		return err == nil && c.Value == 7
	})
	r := send(t, http.MethodGet, follower.URL+pq+"?consistency=stale", nil)
	wantOK(t, r, http.StatusOK)
	if r.header.Get(api.HeaderLastContact) == "" {
		t.Errorf("stale backup without %s", api.HeaderLastContact)
	}

	mintN(t, leader.URL, "ids", 5)
	// The follower checks the upload before it redirects: bad input is
	// answered where it arrives.
	checkError(t, postBackup(t, follower.URL+pq, file[:len(file)-2]), http.StatusBadRequest, api.CodeBadRequest)
	pq = "/v1/snapshot?advance=100"
	r = postBackup(t, follower.URL+pq, file)
	checkRedirect(t, r, leader, pq)
	res := wantRestored(t, postBackup(t, r.header.Get("Location"), file))
	if res.Advanced != 100 {
		t.Errorf("result %+v", res)
	}
	// Every node applies the same restore.
	for _, nd := range nodes {
		harness.WaitFor(t, 10*time.Second, "every node to apply the restore", func() bool {
			c, _, err := nd.Node.State().Counter("ids")
			return err == nil && c.Value == 112 && c.Index == res.Index
		})
	}
}

func TestSnapshotRestoreFitsTheWALEntryLimit(t *testing.T) {
	// On a wal node a restore is one raft-wal record (at most 64 MiB):
	// a backup that could not be stored is refused before it is read.
	nodes := harness.StartClusterWith(t, 1, httpapi.Config{MaxRestore: 256 << 20})
	n := harness.WaitLeader(t, nodes)
	if n.Node.LogStore() != cluster.LogStoreWAL {
		t.Fatalf("a new data dir got the %s store, want wal", n.Node.LogStore())
	}
	// Declared, never sent: the refusal must come from the length alone.
	addr := strings.TrimPrefix(n.URL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/snapshot HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		addr, api.ContentTypeBackup, cluster.MaxWALEntry)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	checkError(t, reply{status: resp.StatusCode, header: resp.Header, body: b}, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
}
