package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/countd/countd/api"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

var (
	mintKeys = []string{"id", "value", "first", "count", "step", "index"}
	addKeys  = []string{"id", "value", "index"}
)

func mint(tb testing.TB, base, id, query string, headers ...string) (api.Mint, reply) {
	tb.Helper()
	r := sendJSON(tb, http.MethodPost, base+"/v1/counters/"+id+"/next"+query, "", headers...)
	wantOK(tb, r, http.StatusOK)
	var m api.Mint
	decodeStrict(tb, r.body, &m, mintKeys...)
	if h := indexOf(tb, r); h != m.Index {
		tb.Errorf("X-Countd-Index %d differs from the body's index %d", h, m.Index)
	}
	return m, r
}

func TestCounterSuccess(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	c := n.URL + "/v1/counters/"

	t.Run("never written reads as zero", func(t *testing.T) {
		got := getCounter(t, n.URL, "fresh")
		if got != (api.Counter{ID: "fresh", Value: 0, Increment: 1, Offset: 0, Index: 0}) {
			t.Errorf("got %+v", got)
		}
	})

	t.Run("next mints 1, 2, 3", func(t *testing.T) {
		var last uint64
		for want := int64(1); want <= 3; want++ {
			m, _ := mint(t, n.URL, "seq", "")
			if m != (api.Mint{ID: "seq", Value: want, First: want, Count: 1, Step: 1, Index: m.Index}) {
				t.Errorf("mint %d: got %+v", want, m)
			}
			if m.Index <= last {
				t.Errorf("index did not increase: %d after %d", m.Index, last)
			}
			last = m.Index
		}
		if got := getCounter(t, n.URL, "seq"); got.Value != 3 || got.Index != last {
			t.Errorf("after three mints: %+v (last write index %d)", got, last)
		}
	})

	t.Run("next count with ticket-server increment and offset", func(t *testing.T) {
		r := sendJSON(t, http.MethodPut, c+"odd", `{"increment":2,"offset":1}`)
		wantOK(t, r, 200)
		var set api.Counter
		decodeStrict(t, r.body, &set, counterKeys...)
		if set != (api.Counter{ID: "odd", Value: 0, Increment: 2, Offset: 1, Index: set.Index}) || set.Index == 0 {
			t.Errorf("PUT result: %+v", set)
		}
		m, _ := mint(t, n.URL, "odd", "?count=3")
		if m != (api.Mint{ID: "odd", First: 1, Value: 5, Count: 3, Step: 2, Index: m.Index}) {
			t.Errorf("mint 3 odd: got %+v", m)
		}
		m, _ = mint(t, n.URL, "odd", "")
		if m.First != 7 || m.Value != 7 {
			t.Errorf("next odd after 5: got %+v", m)
		}
		// SPEC §6: from -7 with increment 5, offset 2, next is -3.
		wantOK(t, sendJSON(t, http.MethodPut, c+"neg", `{"value":-7,"increment":5,"offset":2}`), 200)
		m, _ = mint(t, n.URL, "neg", "?count=2")
		if m.First != -3 || m.Value != 2 || m.Step != 5 || m.Count != 2 {
			t.Errorf("from -7 inc 5 off 2: got %+v", m)
		}
		// Only the offset's class modulo the increment matters.
		wantOK(t, sendJSON(t, http.MethodPut, c+"cls", `{"value":10,"increment":4,"offset":-9}`), 200)
		if m, _ = mint(t, n.URL, "cls", ""); m.First != 11 {
			t.Errorf("from 10 inc 4 off -9 (≡3): want 11, got %+v", m)
		}
	})

	t.Run("add", func(t *testing.T) {
		r := sendJSON(t, http.MethodPost, c+"sum/add", `{"delta":5,"default":10}`)
		wantOK(t, r, 200)
		var a api.AddResult
		decodeStrict(t, r.body, &a, addKeys...)
		if a.ID != "sum" || a.Value != 15 || a.Index != indexOf(t, r) {
			t.Errorf("add to fresh with default: %+v (header %d)", a, indexOf(t, r))
		}
		r = sendJSON(t, http.MethodPost, c+"sum/add", `{"delta":-20,"default":1000}`)
		wantOK(t, r, 200)
		decodeStrict(t, r.body, &a, addKeys...)
		if a.Value != -5 {
			t.Errorf("default must only apply to a never-written counter: %+v", a)
		}
		r = sendJSON(t, http.MethodPost, c+"sum0/add", `{"delta":3}`)
		wantOK(t, r, 200)
		decodeStrict(t, r.body, &a, addKeys...)
		if a.Value != 3 {
			t.Errorf("add without default starts at 0: %+v", a)
		}
	})

	t.Run("put returns the counter object", func(t *testing.T) {
		r := sendJSON(t, http.MethodPut, c+"cfg", `{"value":100,"increment":10,"offset":3,"monotonic":true}`)
		wantOK(t, r, 200)
		var got api.Counter
		decodeStrict(t, r.body, &got, counterKeys...)
		want := api.Counter{ID: "cfg", Value: 100, Increment: 10, Offset: 3, Monotonic: true, Index: indexOf(t, r)}
		if got != want {
			t.Errorf("PUT: want %+v, got %+v", want, got)
		}
		if g := getCounter(t, n.URL, "cfg"); g != want {
			t.Errorf("GET after PUT: want %+v, got %+v", want, g)
		}
		// Partial PUT changes only the named fields.
		r = sendJSON(t, http.MethodPut, c+"cfg", `{"offset":0}`)
		wantOK(t, r, 200)
		decodeStrict(t, r.body, &got, counterKeys...)
		if got.Value != 100 || got.Increment != 10 || got.Offset != 0 || !got.Monotonic {
			t.Errorf("partial PUT: %+v", got)
		}
	})

	t.Run("delete is 204 and idempotent", func(t *testing.T) {
		wantOK(t, sendJSON(t, http.MethodPut, c+"gone", `{"value":4}`), 200)
		for i := 0; i < 2; i++ {
			r := sendJSON(t, http.MethodDelete, c+"gone", "")
			wantOK(t, r, http.StatusNoContent)
			if len(r.body) != 0 {
				t.Errorf("204 with a body %q", r.body)
			}
		}
		wantOK(t, sendJSON(t, http.MethodDelete, c+"never-existed", ""), http.StatusNoContent)
		if g := getCounter(t, n.URL, "gone"); g != (api.Counter{ID: "gone", Increment: 1}) {
			t.Errorf("deleted counter reads as %+v", g)
		}
	})

	t.Run("list sorted with prefix", func(t *testing.T) {
		for _, id := range []string{"ls-b", "ls-a", "ls-c", "other"} {
			wantOK(t, sendJSON(t, http.MethodPost, c+id+"/add", `{"delta":1}`), 200)
		}
		r := sendJSON(t, http.MethodGet, n.URL+"/v1/counters?prefix=ls-", "")
		wantOK(t, r, 200)
		var list api.CounterList
		decodeStrict(t, r.body, &list, "counters", "next")
		var ids []string
		for _, ctr := range list.Counters {
			ids = append(ids, ctr.ID)
			if ctr.Value != 1 || ctr.Increment != 1 || ctr.Index == 0 {
				t.Errorf("listed counter %+v", ctr)
			}
		}
		if len(ids) != 3 || ids[0] != "ls-a" || ids[1] != "ls-b" || ids[2] != "ls-c" {
			t.Errorf("want [ls-a ls-b ls-c], got %v", ids)
		}
		var raw map[string]json.RawMessage
		_ = json.Unmarshal(r.body, &raw)
		var items []map[string]json.RawMessage
		_ = json.Unmarshal(raw["counters"], &items)
		for _, it := range items {
			if len(it) != len(counterKeys) {
				t.Errorf("list item fields: want %v, got %v", counterKeys, it)
			}
		}
		r = sendJSON(t, http.MethodGet, n.URL+"/v1/counters?prefix=nothing-here", "")
		wantOK(t, r, 200)
		var empty map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &empty); err != nil || len(empty) != 2 || string(empty["counters"]) != "[]" || string(empty["next"]) != "null" {
			t.Errorf("empty list: want {\"counters\":[],\"next\":null}, got %s", r.body)
		}
	})

	t.Run("pages", func(t *testing.T) {
		for _, id := range []string{"pg-1", "pg-2", "pg-3", "pg-4", "pg-5"} {
			wantOK(t, sendJSON(t, http.MethodPost, c+id+"/next", ""), 200)
		}
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			r := sendJSON(t, http.MethodGet, n.URL+"/v1/counters?prefix=pg-&limit=2&after="+after, "")
			wantOK(t, r, 200)
			var page api.CounterList
			decodeStrict(t, r.body, &page, "counters", "next")
			if len(page.Counters) > 2 || pages > 3 {
				t.Fatalf("page %d: %s", pages, r.body)
			}
			for _, ctr := range page.Counters {
				got = append(got, ctr.ID)
			}
			if page.Next == nil {
				break
			}
			after = *page.Next
		}
		if fmt.Sprint(got) != "[pg-1 pg-2 pg-3 pg-4 pg-5]" {
			t.Fatalf("pages gave %v", got)
		}
		for _, bad := range []string{"0", "1001", "-1", "x"} {
			checkError(t, sendJSON(t, http.MethodGet, n.URL+"/v1/counters?limit="+bad, ""), http.StatusBadRequest, api.CodeBadRequest)
		}
	})

	t.Run("read index header reflects applied index", func(t *testing.T) {
		m, _ := mint(t, n.URL, "hdr", "")
		r := sendJSON(t, http.MethodGet, c+"hdr", "")
		wantOK(t, r, 200)
		if idx := indexOf(t, r); idx < m.Index {
			t.Errorf("read after write reflects index %d < write index %d", idx, m.Index)
		}
		r = sendJSON(t, http.MethodGet, c+"hdr?consistency=stale", "")
		wantOK(t, r, 200)
		if lc := r.header.Get(api.HeaderLastContact); lc != "0" {
			t.Errorf("stale read on the leader: %s = %q, want 0", api.HeaderLastContact, lc)
		}
	})
}

func TestIdempotentReplay(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	key := []string{api.HeaderIdempotencyKey, "replay-key-1"}
	first, r1 := mint(t, n.URL, "rp", "?count=2", key...)
	if h := r1.header.Get(api.HeaderReplayed); h != "" {
		t.Errorf("first response carries %s: %q", api.HeaderReplayed, h)
	}
	// Another write in between, so a replay's index is visibly the original.
	other, _ := mint(t, n.URL, "rp-other", "")
	second, r2 := mint(t, n.URL, "rp", "?count=2", key...)
	if string(r2.body) != string(r1.body) {
		t.Errorf("replay body differs:\nfirst  %s\nsecond %s", r1.body, r2.body)
	}
	if second != first {
		t.Errorf("replay: %+v vs %+v", second, first)
	}
	if h := r2.header.Get(api.HeaderReplayed); h != "true" {
		t.Errorf("replay: %s = %q, want true", api.HeaderReplayed, h)
	}
	if idx := indexOf(t, r2); idx != first.Index || idx >= other.Index {
		t.Errorf("replay X-Countd-Index %d, want the original %d", idx, first.Index)
	}
	if c := getCounter(t, n.URL, "rp"); c.Value != 2 || c.Index != first.Index {
		t.Errorf("a replay minted again: %+v", c)
	}
	next, _ := mint(t, n.URL, "rp", "")
	if next.First != 3 {
		t.Errorf("after replay the next mint should be 3, got %+v", next)
	}

	t.Run("add and put replay", func(t *testing.T) {
		k := []string{api.HeaderIdempotencyKey, "replay-add"}
		a1 := sendJSON(t, http.MethodPost, n.URL+"/v1/counters/rp-add/add", `{"delta":5}`, k...)
		a2 := sendJSON(t, http.MethodPost, n.URL+"/v1/counters/rp-add/add", `{"delta":5}`, k...)
		wantOK(t, a1, 200)
		wantOK(t, a2, 200)
		if string(a1.body) != string(a2.body) || a2.header.Get(api.HeaderReplayed) != "true" {
			t.Errorf("add replay: %s / %s replayed=%q", a1.body, a2.body, a2.header.Get(api.HeaderReplayed))
		}
		if c := getCounter(t, n.URL, "rp-add"); c.Value != 5 {
			t.Errorf("add applied twice: %+v", c)
		}
		k = []string{api.HeaderIdempotencyKey, "replay-put"}
		p1 := sendJSON(t, http.MethodPut, n.URL+"/v1/counters/rp-add", `{"value":50}`, k...)
		wantOK(t, sendJSON(t, http.MethodPost, n.URL+"/v1/counters/rp-add/add", `{"delta":1}`), 200)
		p2 := sendJSON(t, http.MethodPut, n.URL+"/v1/counters/rp-add", `{"value":50}`, k...)
		if string(p1.body) != string(p2.body) || p2.header.Get(api.HeaderReplayed) != "true" {
			t.Errorf("put replay: %s / %s", p1.body, p2.body)
		}
		if c := getCounter(t, n.URL, "rp-add"); c.Value != 51 {
			t.Errorf("put replay was applied again: %+v", c)
		}
	})

	t.Run("a rule refusal is remembered", func(t *testing.T) {
		wantOK(t, sendJSON(t, http.MethodPut, n.URL+"/v1/counters/rp-mono", `{"value":10,"monotonic":true}`), 200)
		k := []string{api.HeaderIdempotencyKey, "replay-refused"}
		e1 := sendJSON(t, http.MethodPut, n.URL+"/v1/counters/rp-mono", `{"value":1}`, k...)
		checkError(t, e1, http.StatusConflict, api.CodeNotMonotonic)
		e2 := sendJSON(t, http.MethodPut, n.URL+"/v1/counters/rp-mono", `{"value":1}`, k...)
		checkError(t, e2, http.StatusConflict, api.CodeNotMonotonic)
		if string(e1.body) != string(e2.body) || e2.header.Get(api.HeaderReplayed) != "true" {
			t.Errorf("refusal replay: %s / %s replayed=%q", e1.body, e2.body, e2.header.Get(api.HeaderReplayed))
		}
		if indexOf(t, e1) != indexOf(t, e2) {
			t.Errorf("refusal replay index %d != %d", indexOf(t, e2), indexOf(t, e1))
		}
	})

	t.Run("input rejected before the log does not use the key", func(t *testing.T) {
		k := []string{api.HeaderIdempotencyKey, "replay-after-400"}
		checkError(t, sendJSON(t, http.MethodPost, n.URL+"/v1/counters/rp-400/next?count=0", "", k...), 400, api.CodeBadRequest)
		m, r := mint(t, n.URL, "rp-400", "?count=4", k...)
		if m.Count != 4 || r.header.Get(api.HeaderReplayed) != "" {
			t.Errorf("key consumed by a 400: %+v replayed=%q", m, r.header.Get(api.HeaderReplayed))
		}
	})
}

func TestHealth(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	for _, p := range []string{"/healthz", "/readyz"} {
		r := sendJSON(t, http.MethodGet, n.URL+p, "")
		if r.status != 200 {
			t.Errorf("%s: %s", p, r)
		}
		var h api.Health
		if err := json.Unmarshal(r.body, &h); err != nil || h.Status != "ok" {
			t.Errorf("%s body: %s", p, r.body)
		}
	}
	r := sendJSON(t, http.MethodGet, n.URL+"/v1/cluster", "")
	wantOK(t, r, 200)
	var st api.Cluster
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Name != "countd" || st.Leader != "solo" || len(st.Members) != 1 || st.Members[0].HTTPAddr != n.Node.HTTPAddr() {
		t.Errorf("single-node cluster status: %s", r.body)
	}
	if st.LeaderHTTP != n.URL {
		t.Errorf("leader_http: want %s, got %s", n.URL, st.LeaderHTTP)
	}
	if h := r.header.Get(api.HeaderIndex); h != strconv.FormatUint(st.AppliedIndex, 10) {
		t.Errorf("cluster status X-Countd-Index %q vs applied_index %d", h, st.AppliedIndex)
	}
}
