package httpapi_test

// Document watches (Server-Sent Events): resuming with ?since= and
// Last-Event-ID, resets past the kept history, watches served by followers,
// through a leader change and a reconnect to another node, the watcher
// limit, and CloseStreams. The SSE client here parses the stream as a
// browser's EventSource does.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

// eventWait bounds the wait for one expected event; generous, for -race on
// a loaded machine.
const eventWait = 10 * time.Second

// streamClient has no overall timeout (a watch lasts as long as the test
// wants) and never follows redirects.
var streamClient = harness.NoRedirects(0)

// do is send without the testing.TB, for goroutines other than the test's
// and for requests that may meet a stopped node.
func do(method, url, body string, headers ...string) (reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	ID, Event, Data string
}

func (e sseEvent) String() string {
	return fmt.Sprintf("id=%s event=%s data=%s", e.ID, e.Event, e.Data)
}

// sseStream reads a text/event-stream in the background.
type sseStream struct {
	url    string
	header http.Header
	events chan sseEvent // closed when the stream ends
	err    error         // why it ended; read only after events is closed
	cancel context.CancelFunc
	body   io.Closer
	once   sync.Once
}

// openWatch opens an SSE stream, checks its response headers, and closes it
// when tb's test ends. headers are name, value pairs.
func openWatch(tb testing.TB, url string, headers ...string) *sseStream {
	tb.Helper()
	s := dialWatch(tb, url, headers...)
	tb.Cleanup(s.close)
	return s
}

// dialWatch is openWatch for a stream that outlives the (sub)test opening
// it: the caller closes it.
func dialWatch(tb testing.TB, url string, headers ...string) *sseStream {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		tb.Fatalf("new request: %v", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := streamClient.Do(req)
	if err != nil {
		cancel()
		tb.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		tb.Fatalf("GET %s: want 200, got %d %s", url, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		tb.Errorf("watch Content-Type: want text/event-stream, got %q", ct)
	}
	if resp.Header.Get(api.HeaderIndex) == "" {
		tb.Errorf("watch response has no %s header", api.HeaderIndex)
	}
	s := &sseStream{url: url, header: resp.Header, events: make(chan sseEvent, 4096), cancel: cancel, body: resp.Body}
	go s.read(ctx, resp.Body)
	return s
}

// read parses the stream as the HTML Living Standard's EventSource does:
// "field: value" lines, one leading space of the value dropped, ':'
// comments ignored, an event dispatched at a blank line.
func (s *sseStream) read(ctx context.Context, body io.Reader) {
	defer close(s.events)
	br := bufio.NewReader(body)
	var (
		ev      sseEvent
		data    []string
		hasData bool
	)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line != "" {
				err = fmt.Errorf("stream ended inside a line: %q", line)
			}
			s.err = err
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "":
			if hasData || ev.ID != "" || ev.Event != "" {
				ev.Data = strings.Join(data, "\n")
				select {
				case s.events <- ev:
				case <-ctx.Done():
					s.err = ctx.Err()
					return
				}
			}
			ev, data, hasData = sseEvent{}, nil, false
		case strings.HasPrefix(line, ":"):
			// comment (keep-alive)
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				ev.ID = value
			case "event":
				ev.Event = value
			case "data":
				data, hasData = append(data, value), true
			case "retry":
			default:
				s.err = fmt.Errorf("unknown SSE field %q in line %q", field, line)
				return
			}
		}
	}
}

// close ends the stream from the client's side, as a dropped connection.
func (s *sseStream) close() {
	s.once.Do(func() {
		s.cancel()
		_ = s.body.Close()
		for range s.events { // drain until the reader stops
		}
	})
}

// next returns the next event, failing if none arrives within eventWait or
// the stream ends.
func (s *sseStream) next(tb testing.TB) sseEvent {
	tb.Helper()
	timer := time.NewTimer(eventWait)
	defer timer.Stop()
	select {
	case ev, ok := <-s.events:
		if !ok {
			tb.Fatalf("watch %s ended while an event was expected: %v", s.url, s.err)
		}
		return ev
	case <-timer.C:
		tb.Fatalf("watch %s: no event within %s", s.url, eventWait)
	}
	return sseEvent{}
}

// waitEnd fails unless the server ends the stream within eventWait; events
// on the way are returned.
func (s *sseStream) waitEnd(tb testing.TB) []sseEvent {
	tb.Helper()
	timer := time.NewTimer(eventWait)
	defer timer.Stop()
	var got []sseEvent
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-timer.C:
			tb.Fatalf("watch %s did not end within %s", s.url, eventWait)
		}
	}
}

// objectKeys decodes a JSON object and checks it has exactly keys.
func objectKeys(tb testing.TB, raw []byte, keys ...string) map[string]json.RawMessage {
	tb.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatalf("not a JSON object: %v: %s", err, raw)
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
		if _, ok := m[k]; !ok {
			tb.Errorf("object lacks %q: %s", k, raw)
		}
	}
	for k := range m {
		if !want[k] {
			tb.Errorf("object has unexpected field %q: %s", k, raw)
		}
	}
	return m
}

// wantReset checks that ev is a reset event and decodes it.
func wantReset(tb testing.TB, ev sseEvent) api.DocReset {
	tb.Helper()
	if ev.Event != api.EventReset {
		tb.Fatalf("want a reset event, got %s", ev)
	}
	var r api.DocReset
	decodeStrict(tb, []byte(ev.Data), &r, "version", "index", "value")
	if ev.ID != strconv.FormatUint(r.Version, 10) {
		tb.Errorf("reset id %q differs from its version %d", ev.ID, r.Version)
	}
	return r
}

// keyChange is one expected entry of a change event; Old and New are
// compact JSON, "" for absent.
type keyChange struct{ Type, Key, Old, New string }

// wantChange checks that ev is the change event of version, with exactly
// the given key changes (none: an empty list), and returns it.
func wantChange(tb testing.TB, ev sseEvent, version uint64, changes ...keyChange) api.DocChange {
	tb.Helper()
	if ev.Event != api.EventChange {
		tb.Fatalf("want the change event of version %d, got %s", version, ev)
	}
	var c api.DocChange
	m := objectKeys(tb, []byte(ev.Data), "version", "index", "changes")
	decodeStrict(tb, []byte(ev.Data), &c, "version", "index", "changes")
	if ev.ID != strconv.FormatUint(c.Version, 10) {
		tb.Errorf("change id %q differs from its version %d", ev.ID, c.Version)
	}
	if c.Version != version {
		tb.Fatalf("want the change of version %d, got %s", version, ev)
	}
	if c.Index == 0 {
		tb.Errorf("change without an index: %s", ev)
	}
	if string(m["changes"]) == "null" {
		tb.Errorf("changes is null, want a list: %s", ev)
	}
	var raw []json.RawMessage
	_ = json.Unmarshal(m["changes"], &raw)
	if len(raw) != len(changes) {
		tb.Fatalf("version %d: want %d key changes %+v, got %s", version, len(changes), changes, ev.Data)
	}
	for i, want := range changes {
		keys := []string{"type", "key"}
		switch want.Type {
		case api.ChangeAdded:
			keys = append(keys, "new")
		case api.ChangeRemoved:
			keys = append(keys, "old")
		case api.ChangeModified:
			keys = append(keys, "old", "new")
		}
		objectKeys(tb, raw[i], keys...)
		got := c.Changes[i]
		if got.Type != want.Type || got.Key != want.Key || string(got.Old) != want.Old || string(got.New) != want.New {
			tb.Errorf("version %d change %d: want %+v, got %s", version, i, want, raw[i])
		}
	}
	return c
}

// docKeys are the fields of a document object.
var docKeys = []string{"name", "version", "value", "index"}

// writeAnywhere sends a write through whichever live node leads, following
// redirects and retrying 503s and dead nodes with one Idempotency-Key, so
// that it happens exactly once, as countctl does (with key "", for reads).
// It returns the first answer that is neither a redirect nor a 503.
func writeAnywhere(t *testing.T, nodes []*harness.Node, method, path, body, key string) reply {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for i := 0; time.Now().Before(deadline); i++ {
		target := nodes[i%len(nodes)].URL + path
		for hop := 0; hop < 3; hop++ {
			var hdr []string
			if key != "" {
				hdr = []string{api.HeaderIdempotencyKey, key}
			}
			r, err := do(method, target, body, hdr...)
			switch {
			case err != nil:
				last = err.Error()
			case r.status == http.StatusTemporaryRedirect:
				target = r.header.Get("Location")
				continue
			case r.status == http.StatusServiceUnavailable:
				last = r.String()
			default:
				return r
			}
			break
		}
		<-time.After(20 * time.Millisecond) // retry backoff
	}
	t.Fatalf("%s %s did not succeed within 30s; last: %s", method, path, last)
	return reply{}
}

// writeDocAnywhere PUTs a document value with writeAnywhere.
func writeDocAnywhere(t *testing.T, nodes []*harness.Node, name, value, key string) api.Document {
	t.Helper()
	r := writeAnywhere(t, nodes, http.MethodPut, "/v1/docs/"+name, value, key)
	wantOK(t, r, http.StatusOK)
	var doc api.Document
	decodeStrict(t, r.body, &doc, docKeys...)
	return doc
}

func TestWatchResume(t *testing.T) {
	n := harness.StartInMemWith(t, cluster.Config{WatchHistory: 3}, httpapi.Config{})
	w := n.URL + "/v1/docs/res/watch"
	for v := 1; v <= 6; v++ {
		putDoc(t, n.URL, "res", fmt.Sprintf(`{"v":%d}`, v))
	}
	mod := func(v int) keyChange {
		return keyChange{api.ChangeModified, "v", strconv.Itoa(v - 1), strconv.Itoa(v)}
	}

	t.Run("since within the history", func(t *testing.T) {
		for _, since := range []int{3, 4, 5} {
			s := openWatch(t, w+"?since="+strconv.Itoa(since))
			for v := since + 1; v <= 6; v++ {
				wantChange(t, s.next(t), uint64(v), mod(v))
			}
			s.close()
		}
	})

	t.Run("Last-Event-ID, and it wins over since", func(t *testing.T) {
		s := openWatch(t, w, "Last-Event-ID", "4")
		wantChange(t, s.next(t), 5, mod(5))
		wantChange(t, s.next(t), 6, mod(6))
		s.close()
		s = openWatch(t, w+"?since=1", "Last-Event-ID", "5")
		wantChange(t, s.next(t), 6, mod(6))
		s.close()
	})

	t.Run("up to date resume waits for the next version", func(t *testing.T) {
		s := openWatch(t, w+"?since=6")
		d := putDoc(t, n.URL, "res", `{"v":7}`)
		c := wantChange(t, s.next(t), 7, mod(7))
		if c.Index != d.Index {
			t.Errorf("change index %d, write index %d", c.Index, d.Index)
		}
		s.close()
	})

	t.Run("resume older than the history gets a reset first", func(t *testing.T) {
		// Three versions are kept: at 7 they are 5, 6, 7, so a watcher at 3
		// has missed 4 for good.
		current := 7
		for _, hdr := range [][]string{nil, {"Last-Event-ID", "3"}} {
			url := w + "?since=3"
			if hdr != nil {
				url = w
			}
			s := openWatch(t, url, hdr...)
			r := wantReset(t, s.next(t))
			if r.Version != uint64(current) || string(r.Value) != fmt.Sprintf(`{"v":%d}`, current) || r.Index == 0 {
				t.Errorf("reset: want version %d, got %+v value %s", current, r, r.Value)
			}
			// Then it continues with every version, no duplicate.
			current++
			putDoc(t, n.URL, "res", fmt.Sprintf(`{"v":%d}`, current))
			wantChange(t, s.next(t), uint64(current), mod(current))
			s.close()
		}
	})

	t.Run("resume ahead of the node waits for it to catch up", func(t *testing.T) {
		// The client saw version 10 on a node further ahead; this one is at
		// 9. Once it reaches 10 the stream goes on from there: no reset back
		// to 9, no second copy of 10.
		s := openWatch(t, w, "Last-Event-ID", "10")
		putDoc(t, n.URL, "res", `{"v":10}`)
		putDoc(t, n.URL, "res", `{"v":11}`)
		wantChange(t, s.next(t), 11, mod(11))
		s.close()
		// A resume point the document never reaches (a forced restore moved
		// it back) gets the document as it is, after a while.
		s = openWatch(t, w+"?since=100")
		if r := wantReset(t, s.next(t)); r.Version != 11 || string(r.Value) != `{"v":11}` {
			t.Errorf("since=100: reset %+v %s", r, r.Value)
		}
		s.close()
	})

	t.Run("since 0 of a long-written document gets a reset", func(t *testing.T) {
		s := openWatch(t, w+"?since=0")
		if r := wantReset(t, s.next(t)); r.Version != 11 || string(r.Value) != `{"v":11}` {
			t.Errorf("since=0: reset %+v %s", r, r.Value)
		}
		s.close()
		// since 0 of a document whose whole history is kept is every version.
		putDoc(t, n.URL, "short", `{"a":1}`)
		s = openWatch(t, n.URL+"/v1/docs/short/watch?since=0")
		wantChange(t, s.next(t), 1, keyChange{api.ChangeAdded, "a", "", "1"})
		s.close()
	})
}

// TestWatchCluster: a watch is served by any node from its own state, so it
// needs no redirect, keeps going through a leader change, and resumes on
// another node.
func TestWatchCluster(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	leader := harness.WaitStable(t, nodes)
	followers := harness.FollowersOf(nodes, leader)
	const name = "cfg"
	val := func(v int) string { return fmt.Sprintf(`{"v":%d}`, v) }
	next := func(t *testing.T, s *sseStream, v int) {
		t.Helper()
		if v == 1 {
			wantChange(t, s.next(t), 1, keyChange{api.ChangeAdded, "v", "", "1"})
			return
		}
		wantChange(t, s.next(t), uint64(v), keyChange{api.ChangeModified, "v", strconv.Itoa(v - 1), strconv.Itoa(v)})
	}

	// Two watchers on the followers, without since: reset at version 0.
	// The streams move between subtests, so they are closed at the end.
	ws := make([]*sseStream, len(followers))
	t.Cleanup(func() {
		for _, s := range ws {
			s.close()
		}
	})
	for i, f := range followers {
		ws[i] = dialWatch(t, f.URL+"/v1/docs/"+name+"/watch")
		if r := wantReset(t, ws[i].next(t)); r.Version != 0 || r.Index != 0 || string(r.Value) != "null" {
			t.Fatalf("first event of a watch on an absent document: %+v value %s", r, r.Value)
		}
	}
	version := 0
	write := func(t *testing.T, alive []*harness.Node) {
		t.Helper()
		version++
		d := writeDocAnywhere(t, alive, name, val(version), fmt.Sprintf("watch-cluster-%d", version))
		if d.Version != uint64(version) {
			t.Fatalf("write %d made version %d", version, d.Version)
		}
	}

	t.Run("followers serve the watch", func(t *testing.T) {
		for range 5 {
			write(t, nodes)
		}
		for _, s := range ws {
			for v := 1; v <= 5; v++ {
				next(t, s, v)
			}
		}
	})

	t.Run("reconnect to another node with Last-Event-ID", func(t *testing.T) {
		// The first watcher drops its connection after version 5 and misses
		// 6 and 7, then resumes on the leader; the second resumes on the
		// other follower.
		ws[0].close()
		write(t, nodes)
		write(t, nodes)
		next(t, ws[1], 6)
		next(t, ws[1], 7)
		ws[1].close()
		// The client's last event came from another node, which the target
		// may not have caught up with yet.
		ws[0] = dialWatch(t, leader.URL+"/v1/docs/"+name+"/watch", "Last-Event-ID", "5")
		ws[1] = dialWatch(t, followers[0].URL+"/v1/docs/"+name+"/watch?since=7")
		write(t, nodes)
		next(t, ws[0], 6)
		next(t, ws[0], 7)
		next(t, ws[0], 8)
		next(t, ws[1], 8)
		ws[0].close()
		ws[0] = dialWatch(t, followers[1].URL+"/v1/docs/"+name+"/watch", "Last-Event-ID", "8")
	})

	t.Run("survives a leader change", func(t *testing.T) {
		// ws[0] is on followers[1], ws[1] on followers[0]. Stop whichever
		// node leads now (on a loaded machine it may no longer be the first
		// leader); the watchers on the other nodes must see every version.
		on := map[*sseStream]*harness.Node{ws[0]: followers[1], ws[1]: followers[0]}
		write(t, nodes) // 9
		l := harness.WaitStable(t, nodes)
		l.Stop()
		alive := harness.FollowersOf(nodes, l)
		var watching []*sseStream
		for _, s := range ws {
			if on[s] != l {
				watching = append(watching, s)
			}
		}
		for range 5 {
			write(t, alive) // 10…14, through the new leader
		}
		for _, s := range watching {
			for v := 9; v <= version; v++ {
				next(t, s, v)
			}
		}
		// Nothing more: a write now arrives as exactly the next version.
		write(t, alive)
		for _, s := range watching {
			next(t, s, version)
		}
	})
}

// TestWatchResumeOnLaggingNode: a client resumes on another node, which may
// not have applied the client's last version yet (followers learn of a
// commit after the leader acknowledged it). The resumed watch must never
// go back in time: its first event is the change after since, or a reset
// at a version at least since — never a reset to an older version followed
// by versions the client already has. The lag lasts only moments, so this
// catches a regression mostly on a loaded machine; TestWatchResume's
// "resume ahead" case is the deterministic one.
func TestWatchResumeOnLaggingNode(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	leader := harness.WaitStable(t, nodes)
	followers := harness.FollowersOf(nodes, leader)
	const name = "lag"
	write := func(v uint64) {
		t.Helper()
		if d := writeDocAnywhere(t, nodes, name, fmt.Sprintf(`{"v":%d}`, v), fmt.Sprintf("lag-%d", v)); d.Version != v {
			t.Fatalf("write %d made version %d", v, d.Version)
		}
	}
	for i := range 10 {
		seen := uint64(2*i + 1)
		write(seen)
		if l := harness.LeaderOf(nodes); l != nil && l != leader {
			leader, followers = l, harness.FollowersOf(nodes, l)
		}
		f := followers[i%len(followers)]
		s := openWatch(t, f.URL+"/v1/docs/"+name+"/watch", "Last-Event-ID", strconv.FormatUint(seen, 10))
		// Resumed at the newest version, the stream has nothing to send
		// before the next write.
		write(seen + 1)
		ev := s.next(t)
		if ev.Event == api.EventReset {
			if r := wantReset(t, ev); r.Version < seen {
				t.Fatalf("resumed on %s with Last-Event-ID %d, got a reset back to version %d: the client's document goes back in time, then it is sent versions it already has", f.Node.ID(), seen, r.Version)
			}
		} else {
			wantChange(t, ev, seen+1, keyChange{api.ChangeModified, "v", strconv.FormatUint(seen, 10), strconv.FormatUint(seen+1, 10)})
		}
		s.close()
	}
}

func TestTooManyWatchers(t *testing.T) {
	n := harness.StartInMemWith(t, cluster.Config{MaxWatchers: 1}, httpapi.Config{})
	wantOK(t, sendJSON(t, http.MethodPost, n.URL+"/v1/queues/q/join", `{"process_id":"p"}`), 200)
	s := openWatch(t, n.URL+"/v1/docs/d/watch")
	wantReset(t, s.next(t)) // the stream holds the node's only slot now

	refused := func(what, url string) {
		t.Helper()
		r := sendJSON(t, http.MethodGet, url, "")
		checkError(t, r, http.StatusServiceUnavailable, api.CodeTooManyWatchers)
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("%s: 503 with Retry-After %q", what, r.header.Get("Retry-After"))
		}
	}
	refused("second watch", n.URL+"/v1/docs/d/watch")
	refused("resumed watch", n.URL+"/v1/docs/other/watch?since=0")
	refused("blocking query", n.URL+"/v1/queues/q?index=1&wait=5s")
	// Plain reads need no slot.
	wantOK(t, sendJSON(t, http.MethodGet, n.URL+"/v1/queues/q", ""), 200)
	wantOK(t, sendJSON(t, http.MethodGet, n.URL+"/v1/queues/q?wait=5s", ""), 200)

	// Once the watcher goes away its slot is free again.
	s.close()
	harness.WaitFor(t, 10*time.Second, "the slot to be released", func() bool {
		r := sendJSON(t, http.MethodGet, n.URL+"/v1/queues/q?index=0&wait=1s", "")
		return r.status == http.StatusOK
	})
	s = openWatch(t, n.URL+"/v1/docs/d/watch")
	wantReset(t, s.next(t))
}

// TestCloseStreams: CloseStreams ends watches and answers blocking queries
// at once, so an http.Server can shut down without waiting for them.
func TestCloseStreams(t *testing.T) {
	// Two slots: when a probe is refused, the watch and the blocking query
	// both hold theirs.
	n := harness.StartInMemWith(t, cluster.Config{MaxWatchers: 2}, httpapi.Config{})
	wantOK(t, sendJSON(t, http.MethodPost, n.URL+"/v1/queues/q/join", `{"process_id":"p"}`), 200)
	_, r := getQueue(t, n.URL, "q", "")
	idx := indexOf(t, r)

	s := openWatch(t, n.URL+"/v1/docs/d/watch")
	wantReset(t, s.next(t))
	putDoc(t, n.URL, "d", `{"a":1}`)
	wantChange(t, s.next(t), 1, keyChange{api.ChangeAdded, "a", "", "1"})

	q := startBlocking(n.URL + "/v1/queues/q?wait=5m&index=" + strconv.FormatUint(idx, 10))
	if q.waitHeld(t, n) {
		t.Fatalf("the blocking query answered before CloseStreams: %s", q.r)
	}
	start := time.Now()
	n.API.CloseStreams()
	if evs := s.waitEnd(t); len(evs) != 0 {
		t.Errorf("events after CloseStreams: %v", evs)
	}
	res := q.wait(t)
	if res.status != http.StatusOK {
		t.Fatalf("blocking query after CloseStreams: %s", res)
	}
	var got api.Queue
	decodeStrict(t, res.body, &got, queueKeys...)
	if len(got.Members) != 1 || got.Members[0].ProcessID != "p" {
		t.Errorf("blocking query after CloseStreams: want the current queue, got %s", res.body)
	}
	if d := time.Since(start); d > eventWait {
		t.Errorf("CloseStreams took %s to end the streams", d)
	}
}
