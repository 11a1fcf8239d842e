package httpapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/countd/countd/api"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

// checkDoc decodes a document answer strictly and checks its ETag and, for
// a write, that X-Countd-Index is the write's index.
func checkDoc(tb testing.TB, r reply, write bool) api.Document {
	tb.Helper()
	wantOK(tb, r, http.StatusOK)
	var d api.Document
	decodeStrict(tb, r.body, &d, docKeys...)
	if et := r.header.Get("ETag"); et != `"`+strconv.FormatUint(d.Version, 10)+`"` {
		tb.Errorf("ETag: want %q, got %q", `"`+strconv.FormatUint(d.Version, 10)+`"`, et)
	}
	if h := indexOf(tb, r); (write && h != d.Index) || h < d.Index {
		tb.Errorf("X-Countd-Index %d, document index %d (write %t)", h, d.Index, write)
	}
	return d
}

// putDoc replaces a document and returns the answer.
func putDoc(tb testing.TB, base, name, value string, headers ...string) api.Document {
	tb.Helper()
	return checkDoc(tb, sendJSON(tb, http.MethodPut, base+"/v1/docs/"+name, value, headers...), true)
}

func patchDoc(tb testing.TB, base, name, patch, contentType string, headers ...string) api.Document {
	tb.Helper()
	headers = append([]string{"Content-Type", contentType}, headers...)
	return checkDoc(tb, sendJSON(tb, http.MethodPatch, base+"/v1/docs/"+name, patch, headers...), true)
}

func getDoc(tb testing.TB, base, name string) api.Document {
	tb.Helper()
	return checkDoc(tb, sendJSON(tb, http.MethodGet, base+"/v1/docs/"+name, ""), false)
}

func TestDocSuccess(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	b := n.URL
	want := func(t *testing.T, d api.Document, version uint64, value string) {
		t.Helper()
		if d.Name != "d" || d.Version != version || string(d.Value) != value || d.Index == 0 {
			t.Errorf("want d version %d %s, got %+v value %s", version, value, d, d.Value)
		}
	}

	checkError(t, sendJSON(t, http.MethodGet, b+"/v1/docs/d", ""), http.StatusNotFound, api.CodeNotFound)

	// Values come back canonical: keys sorted, numbers exactly as written.
	v1 := putDoc(t, b, "d", `{"b": 1, "a": "x"}`)
	want(t, v1, 1, `{"a":"x","b":1}`)
	if got := getDoc(t, b, "d"); got.Version != v1.Version || got.Index != v1.Index || string(got.Value) != string(v1.Value) {
		t.Errorf("GET after PUT: %+v", got)
	}
	want(t, putDoc(t, b, "d", `{"a":"y","b":1}`, "If-Match", `"1"`), 2, `{"a":"y","b":1}`)
	want(t, putDoc(t, b, "d", `{"a":"y","b":2}`, "If-Match", `W/"2"`), 3, `{"a":"y","b":2}`)
	want(t, putDoc(t, b, "d", `{"a":"y","b":2,"n":12345678901234567890}`, "If-Match", `*`), 4, `{"a":"y","b":2,"n":12345678901234567890}`)

	// RFC 7386 merge patch, with either content type.
	want(t, patchDoc(t, b, "d", `{"a":null,"c":{"d":1}}`, "application/merge-patch+json"), 5, `{"b":2,"c":{"d":1},"n":12345678901234567890}`)
	want(t, patchDoc(t, b, "d", `{"b":null,"c":{"e":[1,2]}}`, "application/json", "If-Match", `"5"`), 6, `{"c":{"d":1,"e":[1,2]},"n":12345678901234567890}`)
	want(t, patchDoc(t, b, "d", `{"c":{"d":null},"n":"s"}`, "application/merge-patch+json; charset=utf-8"), 7, `{"c":{"e":[1,2]},"n":"s"}`)
	got := getDoc(t, b, "d")
	want(t, got, 7, `{"c":{"e":[1,2]},"n":"s"}`)

	// DELETE is a version; deleting an absent document is a 204 and no version.
	r := sendJSON(t, http.MethodDelete, b+"/v1/docs/d", "", "If-Match", `"7"`)
	wantOK(t, r, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Errorf("204 with a body: %q", r.body)
	}
	if indexOf(t, r) <= got.Index {
		t.Errorf("delete X-Countd-Index %d is not after the last write %d", indexOf(t, r), got.Index)
	}
	checkError(t, sendJSON(t, http.MethodGet, b+"/v1/docs/d", ""), http.StatusNotFound, api.CodeNotFound)
	wantOK(t, sendJSON(t, http.MethodDelete, b+"/v1/docs/d", ""), http.StatusNoContent)
	wantOK(t, sendJSON(t, http.MethodDelete, b+"/v1/docs/never", ""), http.StatusNoContent)
	// Re-creation continues the versions: 8 was the delete.
	want(t, putDoc(t, b, "d", `{"z":true}`, "If-None-Match", "*"), 9, `{"z":true}`)
	want(t, getDoc(t, b, "d"), 9, `{"z":true}`)

	// PATCH of an absent document creates it.
	p := patchDoc(t, b, "p", `{"a":{"b":null,"c":1}}`, "application/merge-patch+json", "If-None-Match", "*")
	if p.Version != 1 || string(p.Value) != `{"a":{"c":1}}` {
		t.Errorf("PATCH of an absent document: %+v %s", p, p.Value)
	}
	// An empty object is a document.
	if e := putDoc(t, b, "empty", `{}`); e.Version != 1 || string(e.Value) != `{}` {
		t.Errorf("PUT {}: %+v %s", e, e.Value)
	}
	if e := getDoc(t, b, "empty"); string(e.Value) != `{}` {
		t.Errorf("GET {}: %+v %s", e, e.Value)
	}
	// Names are percent-decoded like every other name.
	if e := getDoc(t, b, "%65mpty"); e.Name != "empty" {
		t.Errorf("GET %%65mpty: %+v", e)
	}

	t.Run("idempotent replay", func(t *testing.T) {
		key := []string{api.HeaderIdempotencyKey, "doc-key"}
		r1 := sendJSON(t, http.MethodPut, b+"/v1/docs/idem", `{"a":1}`, key...)
		first := checkDoc(t, r1, true)
		putDoc(t, b, "idem", `{"a":2}`)
		r2 := sendJSON(t, http.MethodPut, b+"/v1/docs/idem", `{"a":1}`, key...)
		wantOK(t, r2, 200)
		if string(r2.body) != string(r1.body) || r2.header.Get(api.HeaderReplayed) != "true" || indexOf(t, r2) != first.Index {
			t.Errorf("replay: want %s replayed at %d, got %s %v", r1.body, first.Index, r2.body, r2.header)
		}
		if d := getDoc(t, b, "idem"); d.Version != 2 || string(d.Value) != `{"a":2}` {
			t.Errorf("a replay wrote again: %+v %s", d, d.Value)
		}
	})
}

func TestDocRefusals(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	b := n.URL
	putDoc(t, b, "d", `{"a":1}`)
	putDoc(t, b, "d", `{"a":2}`) // version 2
	putDoc(t, b, "gone", `{"a":1}`)
	wantOK(t, sendJSON(t, http.MethodDelete, b+"/v1/docs/gone", ""), http.StatusNoContent)
	key := []string{api.HeaderIdempotencyKey, "doc-refusal-key"}
	putDoc(t, b, "k", `{"a":1}`, key...)

	const get, put, patch, del = http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete
	const d = "/v1/docs/d"
	bad := func(name, method, path, body string, headers ...string) refusal {
		return refusal{name: name, method: method, path: path, body: body, headers: headers, status: 400, code: api.CodeBadRequest}
	}
	pf := func(name, method, path, body string, headers ...string) refusal {
		return refusal{name: name, method: method, path: path, body: body, headers: headers, status: 412, code: api.CodePreconditionFailed, logged: true}
	}
	cases := []refusal{
		bad("put array", put, d, `[1]`),
		bad("put string", put, d, `"s"`),
		bad("put number", put, d, `1`),
		bad("put null", put, d, `null`),
		bad("put true", put, d, `true`),
		bad("put malformed", put, d, `{"a":`),
		bad("put empty body", put, d, ``),
		bad("put two objects", put, d, `{} {}`),
		bad("put array to an absent document", put, "/v1/docs/absent", `[]`),
		bad("patch array", patch, d, `[{"op":"add"}]`, "Content-Type", "application/merge-patch+json"),
		bad("patch null", patch, d, `null`, "Content-Type", "application/merge-patch+json"),
		bad("patch malformed", patch, d, `{`, "Content-Type", "application/merge-patch+json"),
		bad("patch with a JSON Patch", patch, d, `{"op":"remove","path":"/a"}`, "Content-Type", "application/json-patch+json"),
		bad("If-Match not a version", put, d, `{"a":3}`, "If-Match", "abc"),
		bad("If-Match quoted word", put, d, `{"a":3}`, "If-Match", `"two"`),
		bad("If-Match negative", put, d, `{"a":3}`, "If-Match", `"-1"`),
		bad("If-Match on patch not a version", patch, d, `{"a":3}`, "If-Match", "x"),
		bad("If-Match on delete not a version", del, d, ``, "If-Match", "x"),
		bad("If-None-Match a version", put, d, `{"a":3}`, "If-None-Match", `"2"`),
		bad("If-Match and If-None-Match", put, "/v1/docs/absent", `{"a":3}`, "If-Match", `"2"`, "If-None-Match", "*"),
		bad("delete with If-None-Match", del, d, ``, "If-None-Match", "*"),
		bad("get consistency bogus", get, d+"?consistency=bogus", ``),
		bad("watch since not a number", get, d+"/watch?since=abc", ``),
		bad("watch since negative", get, d+"/watch?since=-1", ``),
		bad("watch Last-Event-ID not a number", get, d+"/watch", ``, "Last-Event-ID", "abc"),
		bad("put bad idempotency key", put, d, `{"a":3}`, api.HeaderIdempotencyKey, strings.Repeat("k", 129)),
		pf("put If-Match old version", put, d, `{"a":3}`, "If-Match", `"1"`),
		pf("put If-Match future version", put, d, `{"a":3}`, "If-Match", `"3"`),
		pf("put If-Match 0", put, d, `{"a":3}`, "If-Match", `"0"`),
		pf("put If-Match on absent", put, "/v1/docs/absent", `{"a":3}`, "If-Match", `"1"`),
		pf("put If-Match * on absent", put, "/v1/docs/absent", `{"a":3}`, "If-Match", `*`),
		pf("put If-Match on deleted", put, "/v1/docs/gone", `{"a":3}`, "If-Match", `"1"`),
		pf("put If-None-Match * on existing", put, d, `{"a":3}`, "If-None-Match", "*"),
		pf("patch If-Match old version", patch, d, `{"a":3}`, "If-Match", `"1"`),
		pf("patch If-Match on absent", patch, "/v1/docs/absent", `{"a":3}`, "If-Match", `"1"`),
		pf("patch If-None-Match * on existing", patch, d, `{"a":3}`, "If-None-Match", "*"),
		pf("delete If-Match old version", del, d, ``, "If-Match", `"1"`),
		pf("delete If-Match on absent", del, "/v1/docs/absent", ``, "If-Match", `"1"`),
		{name: "get absent", method: get, path: "/v1/docs/absent", status: 404, code: api.CodeNotFound},
		{name: "get deleted", method: get, path: "/v1/docs/gone", status: 404, code: api.CodeNotFound},
		{name: "get absent stale", method: get, path: "/v1/docs/absent?consistency=stale", status: 404, code: api.CodeNotFound},
		{name: "key reused for another value", method: put, path: "/v1/docs/k", body: `{"a":2}`, headers: key, status: 422, code: api.CodeIdempotencyMismatch, logged: true},
		{name: "key reused for another document", method: put, path: "/v1/docs/k2", body: `{"a":1}`, headers: key, status: 422, code: api.CodeIdempotencyMismatch, logged: true},
		{name: "key reused for a patch", method: patch, path: "/v1/docs/k", body: `{"a":1}`, headers: key, status: 422, code: api.CodeIdempotencyMismatch, logged: true},
		{name: "key reused with a precondition", method: put, path: "/v1/docs/k", body: `{"a":1}`, headers: append([]string{"If-Match", `"1"`}, key...), status: 422, code: api.CodeIdempotencyMismatch, logged: true},
	}
	for what, name := range map[string]string{"space": "a%20b", "dot": ".", "slash": "a%2Fb", "star": "a*b", "257 bytes": strings.Repeat("d", 257)} {
		p := "/v1/docs/" + name
		in := func(op, method, suffix, body string) refusal {
			return refusal{name: op + " " + what, method: method, path: p + suffix, body: body, status: 400, code: api.CodeInvalidName}
		}
		cases = append(cases,
			in("get", get, "", ""),
			in("put", put, "", `{"a":1}`),
			in("patch", patch, "", `{"a":1}`),
			in("delete", del, "", ""),
			in("watch", get, "/watch", ""),
		)
	}
	runRefusals(t, b, []string{d, "/v1/docs/absent", "/v1/docs/gone", "/v1/docs/k", "/v1/docs/k2"}, cases)
	if got := getDoc(t, b, "d"); got.Version != 2 || string(got.Value) != `{"a":2}` {
		t.Errorf("refusals changed d: %+v %s", got, got.Value)
	}
}

func TestDocTooLarge(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{MaxBody: 64})
	big := `{"a":"` + strings.Repeat("x", 100) + `"}`
	for _, method := range []string{http.MethodPut, http.MethodPatch} {
		for _, c := range []bool{false, true} {
			_, idx := stateOf(t, n.URL)
			var r reply
			if c {
				r = send(t, method, n.URL+"/v1/docs/d", chunked{strings.NewReader(big)})
			} else {
				r = send(t, method, n.URL+"/v1/docs/d", strings.NewReader(big))
			}
			checkError(t, r, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
			if _, idx2 := stateOf(t, n.URL); idx2 != idx {
				t.Errorf("%s chunked=%t: 413 moved the applied index %d -> %d", method, c, idx, idx2)
			}
		}
	}
	checkError(t, sendJSON(t, http.MethodGet, n.URL+"/v1/docs/d", ""), http.StatusNotFound, api.CodeNotFound)
	putDoc(t, n.URL, "d", `{"a":"`+strings.Repeat("x", 64-8)+`"}`) // exactly at the limit
}

// TestDocWatch: without since a watch starts with a reset of the current
// document, then sends one change event per version.
func TestDocWatch(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	b := n.URL
	s := openWatch(t, b+"/v1/docs/w/watch")
	if r := wantReset(t, s.next(t)); r.Version != 0 || r.Index != 0 || string(r.Value) != "null" {
		t.Fatalf("reset of an absent document: %+v value %s", r, r.Value)
	}

	d1 := putDoc(t, b, "w", `{"b":"x","a":1}`)
	c := wantChange(t, s.next(t), 1,
		keyChange{api.ChangeAdded, "a", "", "1"},
		keyChange{api.ChangeAdded, "b", "", `"x"`})
	if c.Index != d1.Index {
		t.Errorf("change index %d, write index %d", c.Index, d1.Index)
	}
	patchDoc(t, b, "w", `{"a":2,"b":null,"c":{"d":[true]}}`, "application/merge-patch+json")
	wantChange(t, s.next(t), 2,
		keyChange{api.ChangeModified, "a", "1", "2"},
		keyChange{api.ChangeRemoved, "b", `"x"`, ""},
		keyChange{api.ChangeAdded, "c", "", `{"d":[true]}`})
	// Nested changes are reported on their top-level key.
	patchDoc(t, b, "w", `{"c":{"e":null,"d":[false]}}`, "application/json")
	wantChange(t, s.next(t), 3, keyChange{api.ChangeModified, "c", `{"d":[true]}`, `{"d":[false]}`})
	// A write that changes nothing is still a version, with no key changes.
	putDoc(t, b, "w", `{"a":2,"c":{"d":[false]}}`)
	wantChange(t, s.next(t), 4)
	wantOK(t, sendJSON(t, http.MethodDelete, b+"/v1/docs/w", ""), http.StatusNoContent)
	wantChange(t, s.next(t), 5,
		keyChange{api.ChangeRemoved, "a", "2", ""},
		keyChange{api.ChangeRemoved, "c", `{"d":[false]}`, ""})
	// Deleting the absent document sends nothing: the next event is the
	// re-creation.
	wantOK(t, sendJSON(t, http.MethodDelete, b+"/v1/docs/w", ""), http.StatusNoContent)
	putDoc(t, b, "w", `{"a":3}`, "If-None-Match", "*")
	wantChange(t, s.next(t), 6, keyChange{api.ChangeAdded, "a", "", "3"})
	// Refused writes send nothing either.
	checkError(t, sendJSON(t, http.MethodPut, b+"/v1/docs/w", `{"a":4}`, "If-Match", `"1"`), http.StatusPreconditionFailed, api.CodePreconditionFailed)
	putDoc(t, b, "w", `{"a":4}`)
	wantChange(t, s.next(t), 7, keyChange{api.ChangeModified, "a", "3", "4"})
	// Other documents' writes do not appear.
	putDoc(t, b, "other", `{"a":1}`)
	putDoc(t, b, "w", `{"a":5}`)
	wantChange(t, s.next(t), 8, keyChange{api.ChangeModified, "a", "4", "5"})

	t.Run("watch of an existing document starts with its value", func(t *testing.T) {
		s := openWatch(t, b+"/v1/docs/w/watch")
		r := wantReset(t, s.next(t))
		if r.Version != 8 || string(r.Value) != `{"a":5}` || r.Index == 0 {
			t.Errorf("reset: %+v %s", r, r.Value)
		}
		// A deleted document's reset carries null and the delete's version.
		wantOK(t, sendJSON(t, http.MethodDelete, b+"/v1/docs/w", ""), http.StatusNoContent)
		wantChange(t, s.next(t), 9, keyChange{api.ChangeRemoved, "a", "5", ""})
		s2 := openWatch(t, b+"/v1/docs/w/watch")
		if r := wantReset(t, s2.next(t)); r.Version != 9 || string(r.Value) != "null" {
			t.Errorf("reset of a deleted document: %+v %s", r, r.Value)
		}
	})
}
