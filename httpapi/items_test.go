package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/countd/countd/api"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

var (
	itemsKeys = []string{"added", "duplicates", "index"}
	// SPEC §2 lists {"tenant","count"}; §6 Headers adds "index" to object
	// bodies.
	countKeys = []string{"tenant", "count", "index"}
)

func postItems(tb testing.TB, url, body string, headers ...string) (api.ItemsResult, reply) {
	tb.Helper()
	r := sendJSON(tb, http.MethodPost, url, body, headers...)
	wantOK(tb, r, http.StatusOK)
	var res api.ItemsResult
	decodeStrict(tb, r.body, &res, itemsKeys...)
	if h := indexOf(tb, r); h != res.Index || res.Index == 0 {
		tb.Errorf("X-Countd-Index %d, body index %d", h, res.Index)
	}
	return res, r
}

func countOf(tb testing.TB, url string) api.TenantCount {
	tb.Helper()
	r := sendJSON(tb, http.MethodGet, url, "")
	wantOK(tb, r, http.StatusOK)
	var c api.TenantCount
	decodeStrict(tb, r.body, &c, countKeys...)
	if h := indexOf(tb, r); h < c.Index {
		tb.Errorf("X-Countd-Index %d behind the tenant's index %d", h, c.Index)
	}
	return c
}

// itemBatch renders items as tenant/id pairs.
func itemBatch(pairs ...string) string {
	items := make([]api.Item, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		items = append(items, api.Item{Tenant: pairs[i], ID: pairs[i+1]})
	}
	b, _ := json.Marshal(items)
	return string(b)
}

func TestItems(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	b := n.URL

	if c := countOf(t, b+"/v1/items/t1/count"); c != (api.TenantCount{Tenant: "t1"}) {
		t.Errorf("never-written tenant: %+v", c)
	}
	// Duplicates inside one batch count as duplicates; '/' is allowed in
	// item IDs.
	res, _ := postItems(t, b+"/v1/items", itemBatch("t1", "a", "t1", "b", "t1", "a", "t2", "x/y/z", "t2", "a"))
	if res.Added != 4 || res.Duplicates != 1 {
		t.Errorf("first batch: %+v", res)
	}
	c1 := countOf(t, b+"/v1/items/t1/count")
	if c1 != (api.TenantCount{Tenant: "t1", Count: 2, Index: res.Index}) {
		t.Errorf("t1: %+v", c1)
	}
	if c := countOf(t, b+"/v1/items/t2/count"); c.Count != 2 {
		t.Errorf("t2: %+v", c)
	}
	// Re-posting is harmless.
	again, r := postItems(t, b+"/v1/items", itemBatch("t1", "a", "t1", "b", "t2", "x/y/z"))
	if again.Added != 0 || again.Duplicates != 3 || again.Index <= res.Index {
		t.Errorf("re-post: %+v", again)
	}
	if r.header.Get(api.HeaderReplayed) != "" {
		t.Errorf("a re-post without a key is not a replay")
	}
	if c := countOf(t, b+"/v1/items/t1/count"); c.Count != 2 || c.Index != res.Index {
		t.Errorf("a batch of duplicates moved t1: %+v", c)
	}

	t.Run("seed-compatible paths", func(t *testing.T) {
		res, _ := postItems(t, b+"/items", itemBatch("t1", "c", "t3", "a"))
		if res.Added != 2 || res.Duplicates != 0 {
			t.Errorf("POST /items: %+v", res)
		}
		if c := countOf(t, b+"/items/t1/count"); c.Tenant != "t1" || c.Count != 3 || c.Index != res.Index {
			t.Errorf("GET /items/t1/count: %+v", c)
		}
		if c := countOf(t, b+"/v1/items/t3/count"); c.Count != 1 {
			t.Errorf("t3: %+v", c)
		}
		if c := countOf(t, b+"/items/t1/count?consistency=stale"); c.Count != 3 {
			t.Errorf("stale alias read: %+v", c)
		}
	})

	t.Run("idempotency", func(t *testing.T) {
		key := []string{api.HeaderIdempotencyKey, "items-key"}
		first, r1 := postItems(t, b+"/v1/items", itemBatch("t4", "a", "t4", "b"), key...)
		_, r2 := postItems(t, b+"/v1/items", itemBatch("t4", "a", "t4", "b"), key...)
		if string(r1.body) != string(r2.body) || r2.header.Get(api.HeaderReplayed) != "true" {
			t.Errorf("replay: want %s, got %s (%v)", r1.body, r2.body, r2.header)
		}
		if first.Added != 2 {
			t.Errorf("first: %+v", first)
		}
		r := sendJSON(t, http.MethodPost, b+"/v1/items", itemBatch("t4", "a", "t4", "c"), key...)
		checkError(t, r, http.StatusUnprocessableEntity, api.CodeIdempotencyMismatch)
		if c := countOf(t, b+"/v1/items/t4/count"); c.Count != 2 {
			t.Errorf("t4 after mismatches: %+v", c)
		}
	})
}

func TestItemRefusals(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{MaxBatch: 3})
	b := n.URL
	postItems(t, b+"/v1/items", itemBatch("t1", "a"))
	const get, post = http.MethodGet, http.MethodPost
	bad := func(name, path, body string, headers ...string) refusal {
		return refusal{name: name, method: post, path: path, body: body, headers: headers, status: 400, code: api.CodeBadRequest}
	}
	inv := func(name, body string) refusal {
		return refusal{name: name, method: post, path: "/v1/items", body: body, status: 400, code: api.CodeInvalidName}
	}
	cases := []refusal{
		bad("empty batch", "/v1/items", `[]`),
		bad("empty batch on the alias", "/items", `[]`),
		bad("null batch", "/v1/items", `null`),
		bad("empty body", "/v1/items", ``),
		bad("malformed JSON", "/v1/items", `[{"id":"a","tenant":"t1"}`),
		bad("object instead of a list", "/v1/items", `{"id":"a","tenant":"t1"}`),
		bad("unknown field", "/v1/items", `[{"id":"b","tenant":"t1","count":2}]`),
		bad("unknown field on the alias", "/items", `[{"id":"b","tenant":"t1","x":1}]`),
		bad("number id", "/v1/items", `[{"id":1,"tenant":"t1"}]`),
		bad("trailing data", "/v1/items", `[{"id":"b","tenant":"t1"}] []`),
		bad("bad idempotency key", "/v1/items", itemBatch("t1", "b"), api.HeaderIdempotencyKey, ""+strings.Repeat("k", 129)),
		// One bad item rejects the whole batch.
		inv("item id with space", itemBatch("t1", "b", "t1", "c d")),
		inv("item id empty", itemBatch("t1", "b", "t1", "")),
		inv("item id dotdot", itemBatch("t1", "..")),
		inv("item id 257 bytes", itemBatch("t1", strings.Repeat("i", 257))),
		inv("item id missing", `[{"tenant":"t1"}]`),
		inv("tenant with slash", itemBatch("t1", "b", "a/b", "c")),
		inv("tenant missing", `[{"id":"b"}]`),
		inv("tenant with space", itemBatch("t 1", "b")),
		{name: "count tenant with slash", method: get, path: "/v1/items/a%2Fb/count", status: 400, code: api.CodeInvalidName},
		{name: "count tenant with space", method: get, path: "/v1/items/a%20b/count", status: 400, code: api.CodeInvalidName},
		{name: "count tenant dot on the alias", method: get, path: "/items/./count", status: 400, code: api.CodeInvalidName},
		{name: "count consistency bogus", method: get, path: "/v1/items/t1/count?consistency=bogus", status: 400, code: api.CodeBadRequest},
		{name: "batch over MaxBatch", method: post, path: "/v1/items", body: itemBatch("t1", "b", "t1", "c", "t1", "d", "t1", "e"), status: 413, code: api.CodeTooLarge},
		{name: "batch over MaxBatch on the alias", method: post, path: "/items", body: itemBatch("t1", "b", "t1", "c", "t1", "d", "t1", "e"), status: 413, code: api.CodeTooLarge},
	}
	runRefusals(t, b, []string{"/v1/items/t1/count", "/v1/items/t2/count"}, cases)
	// Item IDs may hold '/' and every other allowed byte; a full batch is fine.
	res, _ := postItems(t, b+"/v1/items", itemBatch("t1", "a/b", "t1", "A-Z.a_z:0@9/", "t1", strings.Repeat("i", 256)))
	if res.Added != 3 {
		t.Errorf("a batch of MaxBatch items: %+v", res)
	}

	t.Run("413 does not use the key", func(t *testing.T) {
		key := []string{api.HeaderIdempotencyKey, "items-413"}
		r := sendJSON(t, post, b+"/v1/items", itemBatch("t2", "a", "t2", "b", "t2", "c", "t2", "d"), key...)
		checkError(t, r, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
		res, _ := postItems(t, b+"/v1/items", itemBatch("t2", "a"), key...)
		if res.Added != 1 {
			t.Errorf("after a 413 with the key: %+v", res)
		}
	})
}

func TestItemsBodyTooLarge(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{MaxBody: 64})
	var items []string
	for i := range 10 {
		items = append(items, "t1", fmt.Sprintf("item-%d", i))
	}
	body := itemBatch(items...)
	for _, path := range []string{"/v1/items", "/items"} {
		for _, c := range []bool{false, true} {
			_, idx := stateOf(t, n.URL)
			var r reply
			if c {
				r = send(t, http.MethodPost, n.URL+path, chunked{strings.NewReader(body)})
			} else {
				r = send(t, http.MethodPost, n.URL+path, strings.NewReader(body))
			}
			checkError(t, r, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
			if _, idx2 := stateOf(t, n.URL); idx2 != idx {
				t.Errorf("%s chunked=%t: 413 moved the applied index", path, c)
			}
		}
	}
	if c := countOf(t, n.URL+"/v1/items/t1/count"); c.Count != 0 {
		t.Errorf("413 added items: %+v", c)
	}
}
