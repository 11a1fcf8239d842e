package client_test

// Queues, item counts and documents through the typed calls, against real
// in-process nodes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func TestQueueCalls(t *testing.T) {
	// One watch slot, so the test can see when a blocking read holds it.
	n := harness.StartInMemWith(t, cluster.Config{MaxWatchers: 1}, httpapi.Config{})
	c := newClient(t, client.Config{Addrs: []string{n.URL}})
	ctx := ctxFor(t, 20*time.Second)

	t1, err := c.Join(ctx, "zk", "host-a:1", map[string]string{"zone": "a"})
	if err != nil || t1.ID != "zk" || t1.ProcessID != "host-a:1" || t1.Counter != 1 || t1.Position != 0 ||
		t1.FencingToken != 1 || t1.Index == 0 || t1.Tags["zone"] != "a" {
		t.Fatalf("first Join: %+v, %v", t1, err)
	}
	t2, err := c.Join(ctx, "zk", "host-b", nil)
	if err != nil || t2.Counter != 2 || t2.Position != 1 || t2.FencingToken != 2 || t2.Tags == nil {
		t.Fatalf("second Join: %+v, %v", t2, err)
	}
	again, err := c.Join(ctx, "zk", "host-a:1", map[string]string{"zone": "other"})
	if err != nil || again.Counter != 1 || again.Tags["zone"] != "a" || again.FencingToken != 2 {
		t.Errorf("a re-join returns the stored ticket with the current token: %+v, %v", again, err)
	}

	m, err := c.QueueMember(ctx, "zk", "host-b", client.Stale())
	if err != nil || m.Counter != 2 || m.Position != 1 {
		t.Errorf("QueueMember: %+v, %v", m, err)
	}
	if _, err := c.QueueMember(ctx, "zk", "nobody"); !client.IsCode(err, api.CodeNotFound) {
		t.Errorf("QueueMember of a stranger: %v", err)
	}

	q, idx, err := c.Queue(ctx, "zk")
	if err != nil || len(q.Members) != 2 || q.FencingToken != 2 || idx < q.Index || q.Index != t2.Index {
		t.Fatalf("Queue: %+v, index %d, %v", q, idx, err)
	}

	// An unchanged queue holds a blocking read for the whole wait.
	start := time.Now()
	q2, idx2, err := c.WaitQueue(ctx, "zk", idx, 300*time.Millisecond)
	if el := time.Since(start); err != nil || el < 300*time.Millisecond || len(q2.Members) != 2 || idx2 < idx {
		t.Errorf("WaitQueue on an unchanged queue: %v after %s, index %d, %+v", err, el, idx2, q2)
	}
	// Writes elsewhere do not wake it, a leave does. The other write is
	// made only once the read waits on the server, or it would prove
	// nothing; the read must then answer with the leave.
	got := make(chan *api.Queue, 1)
	go func() {
		q, _, err := c.WaitQueue(ctx, "zk", idx, 10*time.Second)
		if err != nil {
			t.Errorf("WaitQueue: %v", err)
		}
		got <- q
	}()
	harness.WaitFor(t, 10*time.Second, "the blocking read to wait on the server", func() bool {
		release, err := n.Node.AcquireWatch()
		if err != nil {
			return true // its one watch slot is taken: the read waits
		}
		release()
		return false
	})
	if _, err := c.Next(ctx, "unrelated", 1); err != nil {
		t.Fatal(err)
	}
	select {
	case q := <-got:
		t.Fatalf("a write to another object answered the blocking read: %+v", q)
	default:
	}
	l, err := c.Leave(ctx, "zk", "host-a:1")
	if err != nil || l.ID != "zk" || l.FencingToken != 3 || l.Index == 0 {
		t.Fatalf("Leave: %+v, %v", l, err)
	}
	select {
	case q := <-got:
		if q == nil || q.Index != l.Index || len(q.Members) != 1 || q.Members[0].ProcessID != "host-b" || q.Members[0].Position != 0 || q.Members[0].Counter != 2 {
			t.Errorf("blocking read after the leave (index %d): %+v", l.Index, q)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a leave did not wake the blocking read")
	}
	if _, err := c.Leave(ctx, "zk", "host-a:1"); !client.IsCode(err, api.CodeNotFound) {
		t.Errorf("leaving twice: %v", err)
	}

	lo, hi, reuse := int64(5), int64(6), true
	cq, err := c.ConfigureQueue(ctx, "zk", api.QueueConfigRequest{Min: &lo, Max: &hi, Reuse: &reuse})
	if err != nil || cq.Config != (api.QueueConfig{Min: 5, Max: 6, Reuse: true}) || cq.FencingToken != 3 {
		t.Errorf("ConfigureQueue: %+v, %v", cq, err)
	}
	for _, p := range []string{"p5", "p6"} {
		if _, err := c.Join(ctx, "zk", p, nil); err != nil {
			t.Fatalf("Join %s: %v", p, err)
		}
	}
	if _, err := c.Join(ctx, "zk", "p7", nil); !client.IsCode(err, api.CodeQueueFull) {
		t.Errorf("join of a full queue: %v", err)
	}
	if err := c.DeleteQueue(ctx, "zk"); err != nil {
		t.Fatal(err)
	}
	if q, _, err := c.Queue(ctx, "zk"); err != nil || len(q.Members) != 0 || q.Members == nil || q.FencingToken != 0 {
		t.Errorf("a deleted queue reads empty: %+v, %v", q, err)
	}
	if _, err := c.Join(ctx, "unrelated", "p", nil); !client.IsCode(err, api.CodeWrongType) {
		t.Errorf("join of a counter: %v", err)
	}
	if _, err := c.Join(ctx, "zk", "a/b", nil); !client.IsCode(err, api.CodeInvalidName) {
		t.Errorf("a process ID with '/': %v", err)
	}
}

func TestItemCalls(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{MaxBatch: 3})
	c := newClient(t, client.Config{Addrs: []string{n.URL}})
	ctx := ctxFor(t, 10*time.Second)
	r, err := c.AddItems(ctx, []api.Item{{ID: "i/1", Tenant: "t1"}, {ID: "i/2", Tenant: "t1"}, {ID: "i/1", Tenant: "t1"}})
	if err != nil || r.Added != 2 || r.Duplicates != 1 || r.Index == 0 {
		t.Fatalf("AddItems: %+v, %v", r, err)
	}
	if n, err := c.ItemCount(ctx, "t1"); err != nil || n.Tenant != "t1" || n.Count != 2 || n.Index != r.Index {
		t.Errorf("ItemCount: %+v, %v", n, err)
	}
	if n, err := c.ItemCount(ctx, "never", client.Stale()); err != nil || n.Count != 0 {
		t.Errorf("ItemCount of a new tenant: %+v, %v", n, err)
	}
	if _, err := c.AddItems(ctx, nil); !client.IsCode(err, api.CodeBadRequest) {
		t.Errorf("empty batch: %v", err)
	}
	four := []api.Item{{ID: "a", Tenant: "t2"}, {ID: "b", Tenant: "t2"}, {ID: "c", Tenant: "t2"}, {ID: "d", Tenant: "t2"}}
	if _, err := c.AddItems(ctx, four); !client.IsCode(err, api.CodeTooLarge) {
		t.Errorf("batch over the limit: %v", err)
	}
	if _, err := c.AddItems(ctx, []api.Item{{ID: "ok", Tenant: "t2"}, {ID: "bad id", Tenant: "t2"}}); !client.IsCode(err, api.CodeInvalidName) {
		t.Errorf("a bad item: %v", err)
	}
	if n, err := c.ItemCount(ctx, "t2"); err != nil || n.Count != 0 {
		t.Errorf("a rejected batch counted: %+v, %v", n, err)
	}
}

func TestDocCalls(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	c := newClient(t, client.Config{Addrs: []string{n.URL}})
	ctx := ctxFor(t, 10*time.Second)
	if _, err := c.Doc(ctx, "cfg"); !client.IsCode(err, api.CodeNotFound) {
		t.Errorf("absent document: %v", err)
	}
	d, err := c.PutDoc(ctx, "cfg", json.RawMessage(`{"b": 2, "a": 1}`), client.IfAbsent())
	if err != nil || d.Name != "cfg" || d.Version != 1 || d.Index == 0 || string(d.Value) != `{"a":1,"b":2}` {
		t.Fatalf("create: %+v, %v", d, err)
	}
	if _, err := c.PutDoc(ctx, "cfg", json.RawMessage(`{}`), client.IfAbsent()); !client.IsCode(err, api.CodePreconditionFailed) {
		t.Errorf("If-None-Match on an existing document: %v", err)
	}
	if d, err = c.PutDoc(ctx, "cfg", json.RawMessage(`{"a":1,"b":3}`), client.IfMatch(1)); err != nil || d.Version != 2 {
		t.Fatalf("PutDoc If-Match 1: %+v, %v", d, err)
	}
	if _, err := c.PutDoc(ctx, "cfg", json.RawMessage(`{}`), client.IfMatch(1)); !client.IsCode(err, api.CodePreconditionFailed) {
		t.Errorf("stale If-Match: %v", err)
	}
	if d, err = c.PatchDoc(ctx, "cfg", json.RawMessage(`{"b":null,"c":{"x":true}}`), client.IfExists()); err != nil || d.Version != 3 || string(d.Value) != `{"a":1,"c":{"x":true}}` {
		t.Fatalf("PatchDoc: %+v, %v", d, err)
	}
	if err := c.DeleteDoc(ctx, "cfg", client.IfMatch(2)); !client.IsCode(err, api.CodePreconditionFailed) {
		t.Errorf("stale conditional delete: %v", err)
	}
	if err := c.DeleteDoc(ctx, "cfg", client.IfMatch(3)); err != nil {
		t.Fatalf("DeleteDoc: %v", err)
	}
	if err := c.DeleteDoc(ctx, "cfg"); err != nil {
		t.Errorf("deleting an absent document: %v", err)
	}
	if _, err := c.Doc(ctx, "cfg", client.Stale()); !client.IsCode(err, api.CodeNotFound) {
		t.Errorf("deleted document: %v", err)
	}
	if _, err := c.PatchDoc(ctx, "cfg", json.RawMessage(`{"z":0}`), client.IfExists()); !client.IsCode(err, api.CodePreconditionFailed) {
		t.Errorf("If-Match: * on an absent document: %v", err)
	}
	if d, err = c.PatchDoc(ctx, "cfg", json.RawMessage(`{"z":0}`)); err != nil || d.Version != 5 {
		t.Errorf("a patch creates the document again, after the delete's version 4: %+v, %v", d, err)
	}
	if _, err := c.PutDoc(ctx, "cfg", json.RawMessage(`[1]`)); !client.IsCode(err, api.CodeBadRequest) {
		t.Errorf("a non-object: %v", err)
	}
	if d, err := c.Doc(ctx, "cfg"); err != nil || d.Version != 5 || string(d.Value) != `{"z":0}` {
		t.Errorf("Doc: %+v, %v", d, err)
	}
	err = c.WatchDoc(ctx, "a b", nil, func(client.DocEvent) error { return nil })
	if !client.IsCode(err, api.CodeInvalidName) {
		t.Errorf("watching an invalid name: %v", err)
	}
}

// replay applies watch events to a document, as a watcher keeping a copy
// would.
type replay struct {
	mu       sync.Mutex
	doc      map[string]json.RawMessage
	versions []uint64
	types    []string
}

func (r *replay) apply(ev client.DocEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.versions = append(r.versions, ev.Version)
	r.types = append(r.types, ev.Type)
	switch ev.Type {
	case api.EventReset:
		r.doc = nil
		if string(ev.Value) != "null" {
			if err := json.Unmarshal(ev.Value, &r.doc); err != nil {
				return err
			}
		}
	case api.EventChange:
		if r.doc == nil {
			r.doc = map[string]json.RawMessage{}
		}
		for _, k := range ev.Changes {
			if k.Type == api.ChangeRemoved {
				delete(r.doc, k.Key)
			} else {
				r.doc[k.Key] = k.New
			}
		}
	}
	return nil
}

func (r *replay) last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.versions) == 0 {
		return 0
	}
	return r.versions[len(r.versions)-1]
}

// TestWatchSurvivesFailover: a watch on a follower sees every version, in
// order and once, while the node it watches on dies and then the leader
// dies, with writes going on all the while.
func TestWatchSurvivesFailover(t *testing.T) {
	nodes := harness.StartCluster(t, 5)
	leader := harness.WaitStable(t, nodes)
	watched := harness.FollowersOf(nodes, leader)[0]
	var all []string
	for _, n := range nodes {
		all = append(all, n.URL)
	}
	writer := newClient(t, client.Config{Addrs: all})
	var notes []string
	var mu sync.Mutex
	// Only the watched node is configured: the watch starts there, and finds
	// the others by discovery.
	watcher := newClient(t, client.Config{Addrs: []string{watched.URL}, OnRetry: func(ri client.RetryInfo) {
		mu.Lock()
		notes = append(notes, ri.Err.Error())
		mu.Unlock()
	}})

	r := &replay{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- watcher.WatchDoc(ctx, "w", nil, r.apply) }()

	version := uint64(0)
	write := func(i int) {
		t.Helper()
		// Keys come and go, so events carry added, modified and removed.
		patch := fmt.Sprintf(`{"k%d":%d,"k%d":null,"n":%d}`, i%4, i, (i+2)%4, i)
		d, err := writer.PatchDoc(ctxFor(t, 20*time.Second), "w", json.RawMessage(patch))
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if d.Version != version+1 {
			t.Fatalf("write %d got version %d after %d", i, d.Version, version)
		}
		version = d.Version
	}
	waitSeen := func(what string) {
		t.Helper()
		harness.WaitFor(t, 20*time.Second, "the watcher to see version "+what, func() bool { return r.last() == version })
	}
	for i := 0; i < 5; i++ {
		write(i)
	}
	waitSeen("5")

	watched.Stop()
	for i := 5; i < 10; i++ {
		write(i)
	}
	waitSeen("10 after its node stopped")

	leader.Stop()
	for i := 10; i < 15; i++ {
		write(i)
	}
	waitSeen("15 after the leader stopped")
	final, err := writer.Doc(ctxFor(t, 20*time.Second), "w")
	if err != nil {
		t.Fatal(err)
	}
	var stored map[string]json.RawMessage
	if err := json.Unmarshal(final.Value, &stored); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	if !reflect.DeepEqual(r.doc, stored) {
		t.Errorf("the replayed document %s differs from the stored %s", r.doc, final.Value)
	}
	r.mu.Unlock()
	if err := writer.DeleteDoc(ctxFor(t, 20*time.Second), "w"); err != nil {
		t.Fatal(err)
	}
	version++
	waitSeen("the delete")

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("WatchDoc ended with %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	want := []uint64{0}
	for v := uint64(1); v <= version; v++ {
		want = append(want, v)
	}
	if !reflect.DeepEqual(r.versions, want) || r.types[0] != api.EventReset {
		t.Errorf("versions seen %v (types %v), want a reset at 0 then every version to %d", r.versions, r.types, version)
	}
	if len(r.doc) != 0 {
		t.Errorf("after the delete the replayed document is %v", r.doc)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notes) == 0 {
		t.Error("the watch never noted moving off its stopped node")
	}
}
