package httpapi_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

var (
	ticketKeys = []string{"id", "process_id", "counter", "position", "tags", "fencing_token", "index"}
	queueKeys  = []string{"id", "fencing_token", "config", "members", "index"}
	leaveKeys  = []string{"id", "fencing_token", "index"}
)

// decodeTicket decodes a ticket strictly; tags must be an object, never null.
func decodeTicket(tb testing.TB, raw []byte) api.Ticket {
	tb.Helper()
	var tk api.Ticket
	m := objectKeys(tb, raw, ticketKeys...)
	decodeStrict(tb, raw, &tk, ticketKeys...)
	if !strings.HasPrefix(string(m["tags"]), "{") {
		tb.Errorf("tags must be an object, got %s", m["tags"])
	}
	return tk
}

// decodeQueue decodes a queue object strictly, members and config included.
func decodeQueue(tb testing.TB, raw []byte) api.Queue {
	tb.Helper()
	var q api.Queue
	m := objectKeys(tb, raw, queueKeys...)
	decodeStrict(tb, raw, &q, queueKeys...)
	objectKeys(tb, m["config"], "min", "max", "reuse")
	var members []json.RawMessage
	if err := json.Unmarshal(m["members"], &members); err != nil || members == nil {
		tb.Fatalf("members must be a list, got %s", m["members"])
	}
	for _, t := range members {
		decodeTicket(tb, t)
	}
	return q
}

// join posts a join and checks the ticket's shape and index header.
func join(tb testing.TB, base, queue, body string, headers ...string) (api.Ticket, reply) {
	tb.Helper()
	r := sendJSON(tb, http.MethodPost, base+"/v1/queues/"+queue+"/join", body, headers...)
	wantOK(tb, r, http.StatusOK)
	return decodeTicket(tb, r.body), r
}

func getQueue(tb testing.TB, base, queue, query string) (api.Queue, reply) {
	tb.Helper()
	r := sendJSON(tb, http.MethodGet, base+"/v1/queues/"+queue+query, "")
	wantOK(tb, r, http.StatusOK)
	return decodeQueue(tb, r.body), r
}

func leave(tb testing.TB, base, queue, process string) api.LeaveResult {
	tb.Helper()
	r := sendJSON(tb, http.MethodPost, base+"/v1/queues/"+queue+"/leave", fmt.Sprintf(`{"process_id":%q}`, process))
	wantOK(tb, r, http.StatusOK)
	var l api.LeaveResult
	decodeStrict(tb, r.body, &l, leaveKeys...)
	if h := indexOf(tb, r); h != l.Index {
		tb.Errorf("leave: X-Countd-Index %d differs from the body's index %d", h, l.Index)
	}
	return l
}

var defaultQueueConfig = api.QueueConfig{Min: 1, Max: math.MaxInt64}

func TestQueueSuccess(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	b := n.URL

	t.Run("never written reads as empty", func(t *testing.T) {
		q, r := getQueue(t, b, "fresh", "")
		if want := (api.Queue{ID: "fresh", Config: defaultQueueConfig, Members: []api.Ticket{}}); !reflect.DeepEqual(q, want) {
			t.Errorf("want %+v, got %+v", want, q)
		}
		for _, s := range []string{`"members":[]`, `"max":9223372036854775807`, `"fencing_token":0`, `"index":0`} {
			if !strings.Contains(string(r.body), s) {
				t.Errorf("body lacks %s: %s", s, r.body)
			}
		}
		r = sendJSON(t, http.MethodGet, b+"/v1/queues/fresh/members/p1", "")
		checkError(t, r, http.StatusNotFound, api.CodeNotFound)
	})

	var p1, p2, p3 api.Ticket
	t.Run("join hands out sequential counters and tokens", func(t *testing.T) {
		var r reply
		p1, r = join(t, b, "q", `{"process_id":"p1"}`)
		if !strings.Contains(string(r.body), `"tags":{}`) {
			t.Errorf("a ticket without tags has tags {}: %s", r.body)
		}
		if want := (api.Ticket{ID: "q", ProcessID: "p1", Counter: 1, Position: 0, Tags: map[string]string{}, FencingToken: 1, Index: p1.Index}); !reflect.DeepEqual(p1, want) {
			t.Errorf("p1: want %+v, got %+v", want, p1)
		}
		if p1.Index == 0 || indexOf(t, r) != p1.Index {
			t.Errorf("p1 index %d, X-Countd-Index %d", p1.Index, indexOf(t, r))
		}
		if r.header.Get(api.HeaderReplayed) != "" {
			t.Errorf("a first join carries %s", api.HeaderReplayed)
		}
		p2, _ = join(t, b, "q", `{"process_id":"p2","tags":{"host":"zk2.example","role":"voter"}}`)
		if want := (api.Ticket{ID: "q", ProcessID: "p2", Counter: 2, Position: 1, Tags: map[string]string{"host": "zk2.example", "role": "voter"}, FencingToken: 2, Index: p2.Index}); !reflect.DeepEqual(p2, want) {
			t.Errorf("p2: want %+v, got %+v", want, p2)
		}
		p3, _ = join(t, b, "q", `{"process_id":"p3.x:9@y-z","tags":{}}`)
		if p3.Counter != 3 || p3.Position != 2 || p3.FencingToken != 3 || len(p3.Tags) != 0 || p3.Index <= p2.Index || p2.Index <= p1.Index {
			t.Errorf("p3: %+v", p3)
		}
	})

	t.Run("re-join returns the stored ticket with the current token", func(t *testing.T) {
		before, _ := getQueue(t, b, "q", "")
		again, r := join(t, b, "q", `{"process_id":"p2","tags":{"role":"observer"}}`)
		want := p2
		want.FencingToken = 3 // the queue's current token
		if !reflect.DeepEqual(again, want) {
			t.Errorf("re-join: want %+v, got %+v", want, again)
		}
		if h, ok := r.header[http.CanonicalHeaderKey(api.HeaderReplayed)]; ok {
			t.Errorf("a re-join without a key is not a replay, got %s: %v", api.HeaderReplayed, h)
		}
		after, _ := getQueue(t, b, "q", "")
		if !reflect.DeepEqual(before, after) {
			t.Errorf("a re-join changed the queue:\n%+v\n%+v", before, after)
		}
	})

	t.Run("get lists members by counter", func(t *testing.T) {
		q, r := getQueue(t, b, "q", "")
		t2 := p2
		if want := (api.Queue{ID: "q", FencingToken: 3, Config: defaultQueueConfig, Members: []api.Ticket{p1, t2, p3}, Index: p3.Index}); !reflect.DeepEqual(q, want) {
			t.Errorf("want %+v\ngot  %+v", want, q)
		}
		if indexOf(t, r) < p3.Index {
			t.Errorf("X-Countd-Index %d is behind the last write %d", indexOf(t, r), p3.Index)
		}
		r = sendJSON(t, http.MethodGet, b+"/v1/queues/q/members/p2", "")
		wantOK(t, r, 200)
		if got := decodeTicket(t, r.body); !reflect.DeepEqual(got, p2) {
			t.Errorf("member p2: want %+v, got %+v", p2, got)
		}
		// Stale reads work on the leader too.
		_, r = getQueue(t, b, "q", "?consistency=stale")
		if r.header.Get(api.HeaderLastContact) != "0" {
			t.Errorf("stale read on the leader: %s = %q", api.HeaderLastContact, r.header.Get(api.HeaderLastContact))
		}
	})

	t.Run("leave shifts later positions, never counters", func(t *testing.T) {
		l := leave(t, b, "q", "p1")
		if l.ID != "q" || l.FencingToken != 4 || l.Index <= p3.Index {
			t.Errorf("leave: %+v", l)
		}
		q, _ := getQueue(t, b, "q", "")
		if len(q.Members) != 2 || q.FencingToken != 4 || q.Index != l.Index {
			t.Fatalf("after leave: %+v", q)
		}
		for i, want := range []struct {
			p string
			c int64
		}{{"p2", 2}, {"p3.x:9@y-z", 3}} {
			m := q.Members[i]
			if m.ProcessID != want.p || m.Counter != want.c || m.Position != i {
				t.Errorf("member %d: %+v", i, m)
			}
		}
		r := sendJSON(t, http.MethodGet, b+"/v1/queues/q/members/p3.x:9@y-z", "")
		wantOK(t, r, 200)
		if got := decodeTicket(t, r.body); got.Position != 1 || got.Counter != 3 {
			t.Errorf("p3 after p1 left: %+v", got)
		}
		// Without reuse a counter is never handed out twice.
		again, _ := join(t, b, "q", `{"process_id":"p1"}`)
		if again.Counter != 4 || again.Position != 2 || again.FencingToken != 5 {
			t.Errorf("p1 joining again: %+v", again)
		}
	})

	t.Run("configure is partial and keeps token and members", func(t *testing.T) {
		before, _ := getQueue(t, b, "q", "")
		r := sendJSON(t, http.MethodPut, b+"/v1/queues/q", `{"max":100}`)
		wantOK(t, r, 200)
		got := decodeQueue(t, r.body)
		want := before
		want.Config = api.QueueConfig{Min: 1, Max: 100}
		want.Index = got.Index
		if !reflect.DeepEqual(got, want) || got.Index <= before.Index || indexOf(t, r) != got.Index {
			t.Errorf("PUT config: want %+v, got %+v (header %d)", want, got, indexOf(t, r))
		}
		r = sendJSON(t, http.MethodPut, b+"/v1/queues/q", `{"reuse":true}`)
		wantOK(t, r, 200)
		if got := decodeQueue(t, r.body); got.Config != (api.QueueConfig{Min: 1, Max: 100, Reuse: true}) || got.FencingToken != before.FencingToken {
			t.Errorf("second partial PUT: %+v", got)
		}
		// reuse now hands out the lowest free counter: 1.
		tk, _ := join(t, b, "q", `{"process_id":"p9"}`)
		if tk.Counter != 1 || tk.Position != 0 {
			t.Errorf("reuse join: %+v", tk)
		}
		// A configured, never-joined queue exists with its config.
		r = sendJSON(t, http.MethodPut, b+"/v1/queues/zk", `{"min":1,"max":255,"reuse":true}`)
		wantOK(t, r, 200)
		if got := decodeQueue(t, r.body); got.Config != (api.QueueConfig{Min: 1, Max: 255, Reuse: true}) || got.FencingToken != 0 || len(got.Members) != 0 {
			t.Errorf("configure a new queue: %+v", got)
		}
	})

	t.Run("delete is 204, idempotent, and resets the queue", func(t *testing.T) {
		for range 2 {
			r := sendJSON(t, http.MethodDelete, b+"/v1/queues/q", "")
			wantOK(t, r, http.StatusNoContent)
			if len(r.body) != 0 {
				t.Errorf("204 with a body: %q", r.body)
			}
		}
		wantOK(t, sendJSON(t, http.MethodDelete, b+"/v1/queues/never", ""), http.StatusNoContent)
		q, _ := getQueue(t, b, "q", "")
		if want := (api.Queue{ID: "q", Config: defaultQueueConfig, Members: []api.Ticket{}}); !reflect.DeepEqual(q, want) {
			t.Errorf("after delete: want %+v, got %+v", want, q)
		}
		tk, _ := join(t, b, "q", `{"process_id":"p3"}`)
		if tk.Counter != 1 || tk.FencingToken != 1 || tk.Index <= p3.Index {
			t.Errorf("re-created queue starts from token 0 and min: %+v", tk)
		}
	})

	t.Run("queues are not counters", func(t *testing.T) {
		r := sendJSON(t, http.MethodGet, b+"/v1/counters", "")
		wantOK(t, r, 200)
		var l api.CounterList
		decodeStrict(t, r.body, &l, "counters", "next")
		if len(l.Counters) != 0 {
			t.Errorf("counter list shows queues: %s", r.body)
		}
	})
}

func TestQueueFull(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	b := n.URL
	for _, tc := range []struct {
		name, config string
		reuse        bool
	}{
		{"reuse", `{"min":1,"max":2,"reuse":true}`, true},
		{"no reuse", `{"min":1,"max":2}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := "full-" + strings.ReplaceAll(tc.name, " ", "-")
			wantOK(t, sendJSON(t, http.MethodPut, b+"/v1/queues/"+q, tc.config), 200)
			a, _ := join(t, b, q, `{"process_id":"a"}`)
			bb, _ := join(t, b, q, `{"process_id":"b"}`)
			if a.Counter != 1 || bb.Counter != 2 {
				t.Fatalf("counters %d, %d", a.Counter, bb.Counter)
			}
			before, _ := getQueue(t, b, q, "")
			key := []string{api.HeaderIdempotencyKey, "full-" + q}
			r := sendJSON(t, http.MethodPost, b+"/v1/queues/"+q+"/join", `{"process_id":"c"}`, key...)
			checkError(t, r, http.StatusConflict, api.CodeQueueFull)
			after, _ := getQueue(t, b, q, "")
			if !reflect.DeepEqual(before, after) {
				t.Errorf("queue_full changed the queue:\n%+v\n%+v", before, after)
			}
			// A re-join of a member of a full queue is still its ticket.
			if again, _ := join(t, b, q, `{"process_id":"b"}`); again.Counter != 2 {
				t.Errorf("re-join in a full queue: %+v", again)
			}
			leave(t, b, q, "a")
			// The 409 was decided by the log, so its key replays it even now
			// that there is room.
			r = sendJSON(t, http.MethodPost, b+"/v1/queues/"+q+"/join", `{"process_id":"c"}`, key...)
			checkError(t, r, http.StatusConflict, api.CodeQueueFull)
			if r.header.Get(api.HeaderReplayed) != "true" {
				t.Errorf("replayed 409 without %s: true", api.HeaderReplayed)
			}
			r = sendJSON(t, http.MethodPost, b+"/v1/queues/"+q+"/join", `{"process_id":"c"}`)
			if tc.reuse {
				wantOK(t, r, 200)
				if c := decodeTicket(t, r.body); c.Counter != 1 || c.Position != 0 {
					t.Errorf("reuse: c should get the freed counter 1 at position 0: %+v", c)
				}
			} else {
				checkError(t, r, http.StatusConflict, api.CodeQueueFull)
			}
		})
	}
	t.Run("min 0 max 0", func(t *testing.T) {
		wantOK(t, sendJSON(t, http.MethodPut, b+"/v1/queues/zero", `{"min":0,"max":0}`), 200)
		if tk, _ := join(t, b, "zero", `{"process_id":"a"}`); tk.Counter != 0 {
			t.Errorf("counter: %+v", tk)
		}
		checkError(t, sendJSON(t, http.MethodPost, b+"/v1/queues/zero/join", `{"process_id":"b"}`), http.StatusConflict, api.CodeQueueFull)
	})
}

// refusal is one request that must be refused and change nothing.
type refusal struct {
	name         string
	method, path string
	body         string
	headers      []string
	status       int
	code         api.Code
	// logged: decided by the log (404/409/412/422), so the applied index
	// may move; otherwise nothing may reach the log.
	logged bool
}

// runRefusals runs each case and checks that the objects at watch (GET
// paths) and, for refusals before the log, the applied index are as before.
func runRefusals(t *testing.T, base string, watch []string, cases []refusal) {
	t.Helper()
	state := func(t *testing.T) (string, uint64) {
		var sb strings.Builder
		for _, p := range watch {
			r := sendJSON(t, http.MethodGet, base+p, "")
			fmt.Fprintf(&sb, "%s: %d %s\n", p, r.status, r.body)
		}
		_, idx := stateOf(t, base)
		return sb.String(), idx
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, beforeIdx := state(t)
			r := sendJSON(t, tc.method, base+tc.path, tc.body, tc.headers...)
			checkError(t, r, tc.status, tc.code)
			after, afterIdx := state(t)
			if before != after {
				t.Errorf("a refused request changed state:\nbefore %s\nafter  %s", before, after)
			}
			if !tc.logged && afterIdx != beforeIdx {
				t.Errorf("a request refused before the log moved the applied index %d -> %d", beforeIdx, afterIdx)
			}
		})
	}
}

func TestQueueRefusals(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	b := n.URL
	join(t, b, "q", `{"process_id":"p1"}`)
	wantOK(t, sendJSON(t, http.MethodPut, b+"/v1/counters/c", `{"value":7}`), 200)
	watch := []string{"/v1/queues/q", "/v1/counters/c", "/v1/queues/other"}
	const get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	bad := func(name, method, path, body string, headers ...string) refusal {
		return refusal{name: name, method: method, path: path, body: body, headers: headers, status: 400, code: api.CodeBadRequest}
	}
	inv := func(name, method, path, body string) refusal {
		return refusal{name: name, method: method, path: path, body: body, status: 400, code: api.CodeInvalidName}
	}
	tags65 := make(map[string]string)
	for i := range 65 {
		tags65[fmt.Sprintf("k%d", i)] = "v"
	}
	tags65JSON, _ := json.Marshal(tags65)
	cases := []refusal{
		bad("join malformed JSON", post, "/v1/queues/q/join", `{"process_id":`),
		bad("join unknown field", post, "/v1/queues/q/join", `{"process_id":"p2","priority":1}`),
		bad("join empty body", post, "/v1/queues/q/join", ``),
		bad("join not an object", post, "/v1/queues/q/join", `["p2"]`),
		bad("join trailing data", post, "/v1/queues/q/join", `{"process_id":"p2"} {}`),
		bad("join tags not an object", post, "/v1/queues/q/join", `{"process_id":"p2","tags":["a"]}`),
		bad("join tag value not a string", post, "/v1/queues/q/join", `{"process_id":"p2","tags":{"a":1}}`),
		bad("join 65 tags", post, "/v1/queues/q/join", `{"process_id":"p2","tags":`+string(tags65JSON)+`}`),
		bad("join tag value too long", post, "/v1/queues/q/join", `{"process_id":"p2","tags":{"a":"`+strings.Repeat("v", 1025)+`"}}`),
		bad("join bad idempotency key", post, "/v1/queues/q/join", `{"process_id":"p2"}`, api.HeaderIdempotencyKey, "tab\there"),
		bad("leave malformed JSON", post, "/v1/queues/q/leave", `{`),
		bad("leave unknown field", post, "/v1/queues/q/leave", `{"process_id":"p1","force":true}`),
		bad("config empty object", put, "/v1/queues/q", `{}`),
		bad("config unknown field", put, "/v1/queues/q", `{"min":1,"size":3}`),
		bad("config negative min", put, "/v1/queues/q", `{"min":-1}`),
		bad("config negative max", put, "/v1/queues/q", `{"max":-1}`),
		bad("config min above max", put, "/v1/queues/q", `{"min":3,"max":2}`),
		bad("config string reuse", put, "/v1/queues/q", `{"reuse":"yes"}`),
		bad("get index not a number", get, "/v1/queues/q?index=abc", ``),
		bad("get index negative", get, "/v1/queues/q?index=-1", ``),
		bad("get wait not a duration", get, "/v1/queues/q?index=1&wait=abc", ``),
		bad("get wait negative", get, "/v1/queues/q?index=1&wait=-1s", ``),
		bad("get wait without unit", get, "/v1/queues/q?index=1&wait=5", ``),
		bad("get consistency bogus", get, "/v1/queues/q?consistency=bogus", ``),
		bad("member consistency bogus", get, "/v1/queues/q/members/p1?consistency=bogus", ``),
		inv("join process id with slash", post, "/v1/queues/q/join", `{"process_id":"a/b"}`),
		inv("join process id missing", post, "/v1/queues/q/join", `{}`),
		inv("join process id with space", post, "/v1/queues/q/join", `{"process_id":"a b"}`),
		inv("join process id dotdot", post, "/v1/queues/q/join", `{"process_id":".."}`),
		inv("join process id 257 bytes", post, "/v1/queues/q/join", `{"process_id":"`+strings.Repeat("p", 257)+`"}`),
		inv("join tag key invalid", post, "/v1/queues/q/join", `{"process_id":"p2","tags":{"a b":"x"}}`),
		inv("leave process id with slash", post, "/v1/queues/q/leave", `{"process_id":"a/b"}`),
		inv("member process id with slash", get, "/v1/queues/q/members/a%2Fb", ``),
		inv("member process id dot", get, "/v1/queues/q/members/.", ``),
	}
	for what, name := range map[string]string{"space": "a%20b", "dotdot": "..", "slash": "a%2Fb", "star": "a*b", "257 bytes": strings.Repeat("q", 257)} {
		p := "/v1/queues/" + name
		cases = append(cases,
			inv("get queue "+what, get, p, ``),
			inv("blocking get queue "+what, get, p+"?index=1&wait=1s", ``),
			inv("member of queue "+what, get, p+"/members/p1", ``),
			inv("join queue "+what, post, p+"/join", `{"process_id":"p2"}`),
			inv("leave queue "+what, post, p+"/leave", `{"process_id":"p1"}`),
			inv("configure queue "+what, put, p, `{"max":9}`),
			inv("delete queue "+what, del, p, ``),
		)
	}
	nf := func(name, method, path, body string) refusal {
		return refusal{name: name, method: method, path: path, body: body, status: 404, code: api.CodeNotFound, logged: true}
	}
	cases = append(cases,
		nf("leave when not queued", post, "/v1/queues/q/leave", `{"process_id":"p2"}`),
		nf("leave a never-written queue", post, "/v1/queues/other/leave", `{"process_id":"p1"}`),
		nf("member not queued", get, "/v1/queues/q/members/p2", ``),
		nf("member of a never-written queue", get, "/v1/queues/other/members/p1", ``),
		nf("unknown queue op", post, "/v1/queues/q/shuffle", `{}`),
	)
	// A partial config that crosses the stored bounds is only known to be
	// bad in the log.
	cases = append(cases, refusal{name: "config min above stored max", method: put, path: "/v1/queues/q", body: `{"min":10}`, status: 400, code: api.CodeBadRequest, logged: true})
	wantOK(t, sendJSON(t, put, b+"/v1/queues/q", `{"max":5}`), 200)
	runRefusals(t, b, watch, cases)
}

func TestQueueWrongType(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	b := n.URL
	join(t, b, "q", `{"process_id":"p1"}`)
	wantOK(t, sendJSON(t, http.MethodPut, b+"/v1/counters/c", `{"value":7}`), 200)
	const get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	wt := func(name, method, path, body, msg string) refusal {
		return refusal{name: name + ": " + msg, method: method, path: path, body: body, status: 409, code: api.CodeWrongType, logged: true}
	}
	const onQueue, onCounter = "q is a queue, not a counter", "c is a counter, not a queue"
	cases := []refusal{
		wt("counter get", get, "/v1/counters/q", ``, onQueue),
		wt("counter next", post, "/v1/counters/q/next", ``, onQueue),
		wt("counter add", post, "/v1/counters/q/add", `{"delta":1}`, onQueue),
		wt("counter put", put, "/v1/counters/q", `{"value":1}`, onQueue),
		wt("counter delete", del, "/v1/counters/q", ``, onQueue),
		wt("queue get", get, "/v1/queues/c", ``, onCounter),
		wt("queue blocking get", get, "/v1/queues/c?index=0&wait=5s", ``, onCounter),
		wt("queue member", get, "/v1/queues/c/members/p1", ``, onCounter),
		wt("queue join", post, "/v1/queues/c/join", `{"process_id":"p1"}`, onCounter),
		wt("queue leave", post, "/v1/queues/c/leave", `{"process_id":"p1"}`, onCounter),
		wt("queue configure", put, "/v1/queues/c", `{"max":3}`, onCounter),
		wt("queue delete", del, "/v1/queues/c", ``, onCounter),
	}
	runRefusals(t, b, []string{"/v1/queues/q", "/v1/counters/c"}, cases)
	for _, tc := range cases {
		r := sendJSON(t, tc.method, b+tc.path, tc.body)
		var e api.Error
		_ = json.Unmarshal(r.body, &e)
		_, want, _ := strings.Cut(tc.name, ": ")
		if e.Error != want {
			t.Errorf("%s %s: message: want %q, got %q", tc.method, tc.path, want, e.Error)
		}
	}
}

func TestQueueIdempotency(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	b := n.URL
	key := []string{api.HeaderIdempotencyKey, "join-key-1"}
	first, r1 := join(t, b, "q", `{"process_id":"a","tags":{"x":"1"}}`, key...)
	join(t, b, "q", `{"process_id":"b"}`)

	// The same request replays the first answer, index included, although
	// the queue's token has moved on since.
	again, r2 := join(t, b, "q", `{"process_id":"a","tags":{"x":"1"}}`, key...)
	if string(r1.body) != string(r2.body) || !reflect.DeepEqual(first, again) {
		t.Errorf("replay: want %s, got %s", r1.body, r2.body)
	}
	if r2.header.Get(api.HeaderReplayed) != "true" {
		t.Errorf("replay without %s: true", api.HeaderReplayed)
	}
	if indexOf(t, r2) != first.Index {
		t.Errorf("replay X-Countd-Index: want the original %d, got %d", first.Index, indexOf(t, r2))
	}

	for _, tc := range []refusal{
		{name: "different process", method: http.MethodPost, path: "/v1/queues/q/join", body: `{"process_id":"c"}`},
		{name: "different tags", method: http.MethodPost, path: "/v1/queues/q/join", body: `{"process_id":"a","tags":{"x":"2"}}`},
		{name: "different queue", method: http.MethodPost, path: "/v1/queues/q2/join", body: `{"process_id":"a","tags":{"x":"1"}}`},
		{name: "leave", method: http.MethodPost, path: "/v1/queues/q/leave", body: `{"process_id":"a"}`},
		{name: "delete", method: http.MethodDelete, path: "/v1/queues/q"},
	} {
		tc.headers, tc.status, tc.code, tc.logged = key, http.StatusUnprocessableEntity, api.CodeIdempotencyMismatch, true
		runRefusals(t, b, []string{"/v1/queues/q", "/v1/queues/q2"}, []refusal{tc})
	}

	t.Run("input refused before the log does not use the key", func(t *testing.T) {
		k := []string{api.HeaderIdempotencyKey, "join-key-2"}
		checkError(t, sendJSON(t, http.MethodPost, b+"/v1/queues/q/join", `{"process_id":"a/b"}`, k...), 400, api.CodeInvalidName)
		checkError(t, sendJSON(t, http.MethodPost, b+"/v1/queues/q/join", `{"process_id":"c","x":1}`, k...), 400, api.CodeBadRequest)
		tk, r := join(t, b, "q", `{"process_id":"c"}`, k...)
		if tk.Counter != 3 || r.header.Get(api.HeaderReplayed) != "" {
			t.Errorf("join after refused attempts with the key: %+v replayed=%q", tk, r.header.Get(api.HeaderReplayed))
		}
	})
}

// TestQueueConfigRefusalKeepsKey: SPEC §6 Idempotency says input rejected
// with 400 does not use the Idempotency-Key. A partial config that would
// cross the stored bounds ({"min":10} on a queue with max 5) is a 400, but
// it is only found out when the command is applied, so today the key is
// remembered for it.
func TestQueueConfigRefusalKeepsKey(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	wantOK(t, sendJSON(t, http.MethodPut, n.URL+"/v1/queues/q", `{"max":5}`), 200)
	key := []string{api.HeaderIdempotencyKey, "cfg-key"}
	checkError(t, sendJSON(t, http.MethodPut, n.URL+"/v1/queues/q", `{"min":10}`, key...), 400, api.CodeBadRequest)
	r := sendJSON(t, http.MethodPut, n.URL+"/v1/queues/q", `{"min":2}`, key...)
	wantOK(t, r, 200)
	if q := decodeQueue(t, r.body); q.Config != (api.QueueConfig{Min: 2, Max: 5}) {
		t.Errorf("config: %+v", q.Config)
	}
}

func TestQueueTooLarge(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{MaxBody: 64})
	body := `{"process_id":"p"}` + strings.Repeat(" ", 100)
	for _, c := range []bool{false, true} {
		before, idx := stateOf(t, n.URL)
		var rd = strings.NewReader(body)
		var r reply
		if c {
			r = send(t, http.MethodPost, n.URL+"/v1/queues/q/join", chunked{rd})
		} else {
			r = send(t, http.MethodPost, n.URL+"/v1/queues/q/join", rd)
		}
		checkError(t, r, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
		if after, idx2 := stateOf(t, n.URL); after != before || idx2 != idx {
			t.Errorf("413 moved the applied index %d -> %d", idx, idx2)
		}
	}
	if q, _ := getQueue(t, n.URL, "q", ""); len(q.Members) != 0 {
		t.Errorf("413 joined: %+v", q)
	}
}

// pending is a request running in another goroutine.
type pending struct {
	done       chan struct{}
	r          reply
	err        error
	start, end time.Time
}

// startBlocking sends GET url in the background, resending it while the
// node answers 503 too_many_watchers (a probe, or a slot whose release is
// still on its way, may hold it for a moment).
func startBlocking(url string) *pending {
	p := &pending{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		deadline := time.Now().Add(10 * time.Second)
		for {
			p.start = time.Now()
			p.r, p.err = do(http.MethodGet, url, "")
			p.end = time.Now()
			if p.err != nil || p.r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
				return
			}
		}
	}()
	return p
}

// answered reports whether the request has its answer.
func (p *pending) answered() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitHeld waits until p holds one of n's watch slots — a blocking probe is
// refused with 503 too_many_watchers — or has answered, and reports
// whether it answered. It is meaningful on a node whose other slots are
// all taken (MaxWatchers).
func (p *pending) waitHeld(t *testing.T, n *harness.Node) bool {
	t.Helper()
	// Two refusals in a row, one poll apart: a slot held only for a moment
	// (an earlier probe's, released just after its answer) is not taken for
	// the query's.
	refusals := 0
	harness.WaitFor(t, 10*time.Second, "the blocking query to take its slot", func() bool {
		if p.answered() {
			return true
		}
		r := sendJSON(t, http.MethodGet, n.URL+"/v1/queues/zz-probe?index=0&wait=0s", "")
		if r.status != http.StatusServiceUnavailable {
			refusals = 0
			return false
		}
		refusals++
		return refusals >= 2
	})
	return p.answered()
}

// holdBlocking starts a blocking query (GET url, whose ?wait= is wait) on
// n, a node with one watch slot, and returns once the query waits. A query
// whose wait ran out before the probe caught it waiting (a very slow
// machine) is started again; one answered early is a failure, since
// nothing changed.
func holdBlocking(t *testing.T, n *harness.Node, url string, wait time.Duration) *pending {
	t.Helper()
	for attempt := 1; attempt <= 5; attempt++ {
		p := startBlocking(url)
		if !p.waitHeld(t, n) {
			return p
		}
		r := p.wait(t)
		if d := p.end.Sub(p.start); r.status != http.StatusOK || d < wait {
			t.Fatalf("answered after %s, before its %s wait, although nothing changed: %s", d, wait, r)
		}
	}
	t.Fatalf("could not catch the blocking query %s waiting", url)
	return nil
}

// wait returns p's answer.
func (p *pending) wait(t *testing.T) reply {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("no answer to the blocking query within 30s")
	}
	if p.err != nil {
		t.Fatalf("blocking query: %v", p.err)
	}
	return p.r
}

func TestBlockingQuery(t *testing.T) {
	// One slot: a probe refused with 503 proves the query under test is
	// waiting (or has answered).
	n := harness.StartInMemWith(t, cluster.Config{MaxWatchers: 1}, httpapi.Config{})
	b := n.URL
	join(t, b, "q", `{"process_id":"p1"}`)
	read := func(t *testing.T, queue string) (api.Queue, uint64) {
		q, r := getQueue(t, b, queue, "")
		return q, indexOf(t, r)
	}
	blockingURL := func(queue string, index uint64, wait string) string {
		return fmt.Sprintf("%s/v1/queues/%s?index=%d&wait=%s", b, queue, index, wait)
	}

	t.Run("a join wakes it", func(t *testing.T) {
		_, idx := read(t, "q")
		p := holdBlocking(t, n, blockingURL("q", idx, "5s"), 5*time.Second)
		tk, _ := join(t, b, "q", `{"process_id":"p2"}`)
		r := p.wait(t)
		wantOK(t, r, 200)
		q := decodeQueue(t, r.body)
		if q.Index != tk.Index || len(q.Members) != 2 || q.Members[1].ProcessID != "p2" {
			t.Errorf("the answer does not show the join: %s", r.body)
		}
		if h := indexOf(t, r); h < tk.Index {
			t.Errorf("X-Countd-Index %d behind the join %d", h, tk.Index)
		}
		if d := p.end.Sub(p.start); d >= 5*time.Second {
			t.Errorf("returned only after its wait: %s", d)
		}
	})

	t.Run("a leave wakes it", func(t *testing.T) {
		_, idx := read(t, "q")
		p := holdBlocking(t, n, blockingURL("q", idx, "5s"), 5*time.Second)
		l := leave(t, b, "q", "p1")
		r := p.wait(t)
		wantOK(t, r, 200)
		if q := decodeQueue(t, r.body); q.Index != l.Index || q.FencingToken != l.FencingToken || len(q.Members) != 1 {
			t.Errorf("the answer does not show the leave: %s", r.body)
		}
		if d := p.end.Sub(p.start); d >= 5*time.Second {
			t.Errorf("returned only after its wait: %s", d)
		}
	})

	t.Run("index behind answers at once", func(t *testing.T) {
		q, _ := read(t, "q")
		for _, idx := range []uint64{0, q.Index - 1} {
			p := startBlocking(blockingURL("q", idx, "5s"))
			r := p.wait(t)
			wantOK(t, r, 200)
			if got := decodeQueue(t, r.body); !reflect.DeepEqual(got, q) {
				t.Errorf("index=%d: want %+v, got %+v", idx, q, got)
			}
			if d := p.end.Sub(p.start); d >= 5*time.Second {
				t.Errorf("index=%d: returned only after its wait: %s", idx, d)
			}
		}
	})

	t.Run("no change answers after wait, unchanged", func(t *testing.T) {
		q, idx := read(t, "q")
		p := startBlocking(blockingURL("q", idx, "200ms"))
		r := p.wait(t)
		wantOK(t, r, 200)
		if got := decodeQueue(t, r.body); !reflect.DeepEqual(got, q) {
			t.Errorf("want %+v, got %+v", q, got)
		}
		if d := p.end.Sub(p.start); d < 200*time.Millisecond {
			t.Errorf("answered after %s, before its 200ms wait, with nothing changed", d)
		}
		if h := indexOf(t, r); h < idx {
			t.Errorf("X-Countd-Index went back: %d < %d", h, idx)
		}
	})

	t.Run("writes to other objects do not wake it", func(t *testing.T) {
		const wait = time.Second
		for attempt := 1; ; attempt++ {
			q, idx := read(t, "q")
			p := holdBlocking(t, n, blockingURL("q", idx, wait.String()), wait)
			join(t, b, "other", `{"process_id":"p1"}`)
			wantOK(t, sendJSON(t, http.MethodPut, b+"/v1/queues/other", `{"max":10}`), 200)
			wantOK(t, sendJSON(t, http.MethodPost, b+"/v1/counters/qq/next", ""), 200)
			putDoc(t, b, "q", `{"a":1}`) // documents have their own names
			wrote := time.Now()
			r := p.wait(t)
			if p.end.Before(wrote) && attempt < 5 {
				continue // the wait ran out before the writes: inconclusive
			}
			wantOK(t, r, 200)
			if got := decodeQueue(t, r.body); !reflect.DeepEqual(got, q) {
				t.Errorf("want the unchanged %+v, got %+v", q, got)
			}
			if d := p.end.Sub(p.start); d < wait {
				t.Errorf("woken after %s by writes to other objects", d)
			}
			return
		}
	})

	t.Run("a delete wakes it", func(t *testing.T) {
		join(t, b, "gone", `{"process_id":"p1"}`)
		_, idx := read(t, "gone")
		p := holdBlocking(t, n, blockingURL("gone", idx, "5s"), 5*time.Second)
		wantOK(t, sendJSON(t, http.MethodDelete, b+"/v1/queues/gone", ""), http.StatusNoContent)
		r := p.wait(t)
		wantOK(t, r, 200)
		if got := decodeQueue(t, r.body); !reflect.DeepEqual(got, api.Queue{ID: "gone", Config: defaultQueueConfig, Members: []api.Ticket{}}) {
			t.Errorf("after delete: %s", r.body)
		}
		if d := p.end.Sub(p.start); d >= 5*time.Second {
			t.Errorf("returned only after its wait: %s", d)
		}
	})

	t.Run("a never-written queue waits for its first write", func(t *testing.T) {
		p := holdBlocking(t, n, blockingURL("new", 0, "5s"), 5*time.Second)
		wantOK(t, sendJSON(t, http.MethodPut, b+"/v1/queues/new", `{"max":3}`), 200)
		r := p.wait(t)
		wantOK(t, r, 200)
		if got := decodeQueue(t, r.body); got.Config.Max != 3 || got.Index == 0 {
			t.Errorf("after configure: %s", r.body)
		}
	})

	t.Run("the one slot refuses a second blocking query", func(t *testing.T) {
		_, idx := read(t, "q")
		p := holdBlocking(t, n, blockingURL("q", idx, "5s"), 5*time.Second)
		r := sendJSON(t, http.MethodGet, blockingURL("q", idx, "5s"), "")
		checkError(t, r, http.StatusServiceUnavailable, api.CodeTooManyWatchers)
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
		}
		join(t, b, "q", `{"process_id":"p3"}`) // let the first one go
		wantOK(t, p.wait(t), 200)
	})
}

// TestFollowerQueuesItemsDocs: a follower redirects writes and linearizable
// reads of queues, items and documents to the leader, answers bad input
// itself, and serves stale reads — blocking ones included — from its state.
func TestFollowerQueuesItemsDocs(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	// Writes go through whichever node leads, so that an election on a
	// loaded machine costs a retry, not the test.
	seed := func(t *testing.T, method, path, body, key string) reply {
		t.Helper()
		r := writeAnywhere(t, nodes, method, path, body, key)
		wantOK(t, r, http.StatusOK)
		return r
	}
	p1 := decodeTicket(t, seed(t, http.MethodPost, "/v1/queues/q/join", `{"process_id":"p1"}`, "seed-join").body)
	seed(t, http.MethodPost, "/v1/items", itemBatch("t1", "a"), "seed-items")
	doc := checkDoc(t, seed(t, http.MethodPut, "/v1/docs/d", `{"a":1}`, "seed-doc"), true)
	leader := harness.WaitStable(t, nodes)
	follower := harness.FollowersOf(nodes, leader)[0]
	f := follower.URL
	const get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete

	t.Run("writes and linearizable reads redirect", func(t *testing.T) {
		before := clusterState(t, nodes)
		for _, tc := range []struct {
			method, pq, body string
			headers          []string
		}{
			{post, "/v1/queues/q/join", `{"process_id":"p2"}`, nil},
			{post, "/v1/queues/q/leave", `{"process_id":"p1"}`, nil},
			{put, "/v1/queues/q", `{"max":5}`, nil},
			{del, "/v1/queues/q", ``, nil},
			{post, "/v1/items", itemBatch("t1", "b"), nil},
			{post, "/items", itemBatch("t1", "b"), nil},
			{put, "/v1/docs/d", `{"a":2}`, []string{"If-Match", `"1"`}},
			{patch, "/v1/docs/d", `{"a":2}`, []string{"Content-Type", "application/merge-patch+json"}},
			{del, "/v1/docs/d", ``, nil},
			{get, "/v1/queues/q", ``, nil},
			{get, "/v1/queues/q?index=1&wait=1s", ``, nil},
			{get, "/v1/queues/q/members/p1", ``, nil},
			{get, "/v1/items/t1/count", ``, nil},
			{get, "/items/t1/count", ``, nil},
			{get, "/v1/docs/d", ``, nil},
			{get, "/v1/docs/d?consistency=linearizable", ``, nil},
		} {
			for attempt := 1; ; attempt++ {
				l := harness.WaitStable(t, nodes)
				r := sendJSON(t, tc.method, harness.FollowersOf(nodes, l)[0].URL+tc.pq, tc.body, tc.headers...)
				if (r.status == http.StatusTemporaryRedirect && r.header.Get("Location") == l.URL+tc.pq) || attempt == 5 {
					checkRedirect(t, r, l, tc.pq)
					break
				}
				// The leader changed meanwhile (a loaded machine): again.
			}
		}
		if after := clusterState(t, nodes); after != before {
			t.Errorf("redirected requests changed state:\n%s\n%s", before, after)
		}
	})

	t.Run("validation before redirect", func(t *testing.T) {
		big := make([]string, 0, 2*(httpapi.DefaultMaxBatch+1))
		for i := range httpapi.DefaultMaxBatch + 1 {
			big = append(big, "t1", fmt.Sprintf("i%d", i))
		}
		for _, tc := range []struct {
			method, pq, body string
			headers          []string
			status           int
			code             api.Code
		}{
			{post, "/v1/queues/q/join", `{"process_id":"a/b"}`, nil, 400, api.CodeInvalidName},
			{post, "/v1/queues/a%20b/join", `{"process_id":"p"}`, nil, 400, api.CodeInvalidName},
			{post, "/v1/queues/q/join", `{"process_id":"p","x":1}`, nil, 400, api.CodeBadRequest},
			{post, "/v1/queues/q/leave", `{`, nil, 400, api.CodeBadRequest},
			{put, "/v1/queues/q", `{"min":3,"max":2}`, nil, 400, api.CodeBadRequest},
			{del, "/v1/queues/..", ``, nil, 400, api.CodeInvalidName},
			{get, "/v1/queues/q?index=abc", ``, nil, 400, api.CodeBadRequest},
			{get, "/v1/queues/q?index=1&wait=soon", ``, nil, 400, api.CodeBadRequest},
			{get, "/v1/queues/q/members/a%2Fb", ``, nil, 400, api.CodeInvalidName},
			{post, "/v1/items", `[]`, nil, 400, api.CodeBadRequest},
			{post, "/items", itemBatch("a/b", "x"), nil, 400, api.CodeInvalidName},
			{post, "/v1/items", itemBatch(big...), nil, 413, api.CodeTooLarge},
			{get, "/v1/items/a%20b/count", ``, nil, 400, api.CodeInvalidName},
			{put, "/v1/docs/d", `[1]`, nil, 400, api.CodeBadRequest},
			{put, "/v1/docs/d", `{"a":1}`, []string{"If-Match", "one"}, 400, api.CodeBadRequest},
			{patch, "/v1/docs/d", `{"a":1}`, []string{"Content-Type", "application/json-patch+json"}, 400, api.CodeBadRequest},
			{del, "/v1/docs/d", ``, []string{"If-None-Match", "*"}, 400, api.CodeBadRequest},
			{get, "/v1/docs/a%2Fb", ``, nil, 400, api.CodeInvalidName},
			{get, "/v1/docs/d/watch?since=x", ``, nil, 400, api.CodeBadRequest},
			{post, "/v1/queues/q/join", `{"process_id":"p"}`, []string{api.HeaderIdempotencyKey, "tab\tkey"}, 400, api.CodeBadRequest},
		} {
			r := sendJSON(t, tc.method, f+tc.pq, tc.body, tc.headers...)
			if r.status != tc.status {
				t.Errorf("%s %s on a follower: want %d %s, got %s", tc.method, tc.pq, tc.status, tc.code, r)
				continue
			}
			checkError(t, r, tc.status, tc.code)
		}
	})

	t.Run("stale reads", func(t *testing.T) {
		harness.WaitFor(t, 10*time.Second, "the follower to apply the seed writes", func() bool {
			d, _ := follower.Node.State().Document("d")
			return d.Version == 1
		})
		q, r := getQueue(t, f, "q", "?consistency=stale")
		if len(q.Members) != 1 || q.Members[0].Counter != p1.Counter || r.header.Get(api.HeaderLastContact) == "" {
			t.Errorf("stale queue: %s %v", r.body, r.header)
		}
		r = sendJSON(t, get, f+"/v1/queues/q/members/p1?consistency=stale", "")
		wantOK(t, r, 200)
		if got := decodeTicket(t, r.body); !reflect.DeepEqual(got, p1) {
			t.Errorf("stale member: want %+v, got %+v", p1, got)
		}
		if c := countOf(t, f+"/v1/items/t1/count?consistency=stale"); c.Count != 1 {
			t.Errorf("stale count: %+v", c)
		}
		if d := getDoc(t, f, "d?consistency=stale"); d.Version != 1 || d.Index != doc.Index {
			t.Errorf("stale doc: %+v", d)
		}
	})

	t.Run("stale blocking query on a follower", func(t *testing.T) {
		_, r := getQueue(t, f, "q", "?consistency=stale")
		idx := indexOf(t, r)
		p := startBlocking(fmt.Sprintf("%s/v1/queues/q?consistency=stale&index=%d&wait=5s", f, idx))
		tk := decodeTicket(t, seed(t, http.MethodPost, "/v1/queues/q/join", `{"process_id":"p2"}`, "join-p2").body)
		r = p.wait(t)
		wantOK(t, r, 200)
		q := decodeQueue(t, r.body)
		if q.Index != tk.Index || len(q.Members) != 2 {
			t.Errorf("the answer does not show the join: %s", r.body)
		}
		if r.header.Get(api.HeaderLastContact) == "" {
			t.Errorf("stale blocking read without %s", api.HeaderLastContact)
		}
		if d := p.end.Sub(p.start); d >= 5*time.Second {
			t.Errorf("returned only after its wait: %s", d)
		}
	})
}

// clusterState is the state redirected requests must not have touched,
// read linearizably from whichever node leads.
func clusterState(t *testing.T, nodes []*harness.Node) string {
	t.Helper()
	var sb strings.Builder
	for _, p := range []string{"/v1/queues/q", "/v1/items/t1/count", "/v1/docs/d"} {
		r := writeAnywhere(t, nodes, http.MethodGet, p, "", "")
		fmt.Fprintf(&sb, "%s %d %s\n", p, r.status, r.body)
	}
	return sb.String()
}

// TestStaleBlockingQueryOnLaggingFollower: ?index=N is an X-Countd-Index
// from an earlier read, possibly from another node. A follower that has not
// applied everything up to N yet must not answer when it applies a write at
// or below N: SPEC §6 says the call returns once the queue's last-write
// index exceeds N, or after wait.
func TestStaleBlockingQueryOnLaggingFollower(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	leader := harness.WaitStable(t, nodes)
	followers := harness.FollowersOf(nodes, leader)
	const wait = 500 * time.Millisecond
	for i := range 6 {
		r := writeAnywhere(t, nodes, http.MethodPost, "/v1/queues/lagq/join", fmt.Sprintf(`{"process_id":"p%d"}`, i), fmt.Sprintf("lagq-%d", i))
		wantOK(t, r, 200)
		r = writeAnywhere(t, nodes, http.MethodGet, "/v1/queues/lagq", "", "") // linearizable, on the leader
		wantOK(t, r, 200)
		idx := indexOf(t, r)
		if l := harness.LeaderOf(nodes); l != nil && l != leader {
			leader, followers = l, harness.FollowersOf(nodes, l)
		}
		f := followers[i%len(followers)]
		p := startBlocking(fmt.Sprintf("%s/v1/queues/lagq?consistency=stale&index=%d&wait=%s", f.URL, idx, wait))
		r = p.wait(t)
		wantOK(t, r, 200)
		q := decodeQueue(t, r.body)
		if d := p.end.Sub(p.start); q.Index <= idx && d < wait {
			t.Fatalf("%s answered ?index=%d after %s, before its %s wait, with the queue at index %d (%d members): nothing past N had happened",
				f.Node.ID(), idx, d, wait, q.Index, len(q.Members))
		}
	}
}
