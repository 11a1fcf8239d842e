package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

// errCase is one request that must be refused with status/code and leave
// the state exactly as it was.
type errCase struct {
	name    string
	setup   string // optional PUT body applied to the case's counter first
	method  string
	path    string // absolute (/v1…, /nope) or a suffix of /v1/counters/<id>
	body    string
	headers []string
	status  int
	code    api.Code
	// logged: the refusal is decided by the log (409, 422), so the applied
	// index may move; otherwise nothing may reach the log at all.
	logged bool
}

// stateOf is every counter (with its last-write index) and the applied index.
func stateOf(tb testing.TB, base string) (string, uint64) {
	tb.Helper()
	r := send(tb, http.MethodGet, base+"/v1/counters", nil)
	wantOK(tb, r, http.StatusOK)
	return string(r.body), indexOf(tb, r)
}

func runErrCases(t *testing.T, base string, cases []errCase) {
	t.Helper()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("err-%03d", i)
			if tc.setup != "" {
				wantOK(t, sendJSON(t, http.MethodPut, base+"/v1/counters/"+id, tc.setup), http.StatusOK)
			}
			before, beforeIdx := stateOf(t, base)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			path := tc.path
			if !strings.HasPrefix(path, "/v1") && !strings.HasPrefix(path, "/nope") {
				path = "/v1/counters/" + id + path
			}
			r := send(t, tc.method, base+path, body, tc.headers...)
			m := checkError(t, r, tc.status, tc.code)
			if _, ok := m["current"]; ok && tc.code != api.CodeConflict {
				t.Errorf("only a conflict carries \"current\": %s", r.body)
			}
			after, afterIdx := stateOf(t, base)
			if before != after {
				t.Errorf("state changed by a refused request:\nbefore %s\nafter  %s", before, after)
			}
			if !tc.logged && afterIdx != beforeIdx {
				t.Errorf("a request refused before the log moved the applied index %d -> %d", beforeIdx, afterIdx)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	long := strings.Repeat("k", 129)
	const post, put, get, del = http.MethodPost, http.MethodPut, http.MethodGet, http.MethodDelete
	br := func(name, method, path, body string, headers ...string) errCase {
		return errCase{name: name, setup: `{"value":7}`, method: method, path: path, body: body, headers: headers, status: 400, code: api.CodeBadRequest}
	}
	cases := []errCase{
		br("add malformed JSON", post, "/add", `{"delta":`),
		br("add not an object", post, "/add", `[1]`),
		br("add unknown field", post, "/add", `{"delta":1,"bogus":true}`),
		br("add trailing object", post, "/add", `{"delta":1}{"delta":1}`),
		br("add trailing garbage", post, "/add", `{"delta":1} x`),
		br("add empty body", post, "/add", ``),
		br("add blank body", post, "/add", "  \n "),
		br("add without delta", post, "/add", `{}`),
		br("add with only default", post, "/add", `{"default":5}`),
		br("add null delta", post, "/add", `{"delta":null}`),
		br("add string delta", post, "/add", `{"delta":"1"}`),
		br("add fractional delta", post, "/add", `{"delta":1.5}`),
		br("add delta beyond int64", post, "/add", `{"delta":9223372036854775808}`),
		br("add delta twice", post, "/add", `{"delta":1,"delta":2}`),
		br("add field in the wrong case", post, "/add", `{"DELTA":1}`),
		br("add invalid UTF-8", post, "/add", "{\"delta\":1,\"d\xffefault\":2}"),
		br("put value twice", put, "", `{"value":1,"value":9}`),
		br("put malformed JSON", put, "", `{"value":1`),
		br("put unknown field", put, "", `{"valeu":1}`),
		br("put trailing data", put, "", `{"value":1} {}`),
		br("put empty body", put, "", ``),
		br("put nothing to set", put, "", `{}`),
		br("put only if_value", put, "", `{"if_value":7}`),
		br("put string value", put, "", `{"value":"8"}`),
		br("put increment 0", put, "", `{"increment":0}`),
		br("put increment negative", put, "", `{"increment":-3}`),
		br("put increment over 2^62", put, "", `{"increment":4611686018427387905}`),
		br("next count 0", post, "/next?count=0", ``),
		br("next count negative", post, "/next?count=-1", ``),
		br("next count 1000001", post, "/next?count=1000001", ``),
		br("next count abc", post, "/next?count=abc", ``),
		br("next count fractional", post, "/next?count=1.5", ``),
		br("get consistency bogus", get, "?consistency=bogus", ``),
		{name: "list consistency bogus", method: get, path: "/v1/counters?consistency=bogus", status: 400, code: api.CodeBadRequest},
		br("next key too long", post, "/next", ``, api.HeaderIdempotencyKey, long),
		br("next key with tab", post, "/next", ``, api.HeaderIdempotencyKey, "a\tb"),
		br("next key non-ASCII", post, "/next", ``, api.HeaderIdempotencyKey, "clé"),
		br("add key too long", post, "/add", `{"delta":1}`, api.HeaderIdempotencyKey, long),
		br("put key non-ASCII", put, "", `{"value":8}`, api.HeaderIdempotencyKey, "ключ"),
		br("delete key too long", del, "", ``, api.HeaderIdempotencyKey, long),
		br("delete force maybe", del, "?force=maybe", ``),
		br("next empty key", post, "/next", ``, api.HeaderIdempotencyKey, ""),
	}
	runErrCases(t, n.URL, cases)

	// Boundaries that must be accepted.
	t.Run("accepted boundaries", func(t *testing.T) {
		b := n.URL + "/v1/counters/bounds"
		wantOK(t, sendJSON(t, post, b+"/next", "", api.HeaderIdempotencyKey, strings.Repeat("k", 128)), 200)
		wantOK(t, sendJSON(t, post, b+"/next", "", api.HeaderIdempotencyKey, " !~printable~! "), 200)
		wantOK(t, sendJSON(t, post, b+"/next?count=1000000", ""), 200)
		wantOK(t, sendJSON(t, put, b, `{"increment":4611686018427387904}`), 200)
		wantOK(t, sendJSON(t, post, b+"/next?count=", ""), 200) // empty means the default
		wantOK(t, sendJSON(t, get, b+"?consistency=linearizable", ""), 200)
		wantOK(t, sendJSON(t, post, n.URL+"/v1/counters/"+strings.Repeat("n", 256)+"/add", `{"delta":1}`), 200)
	})
}

func TestInvalidNames(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	names := map[string]string{
		"space":     "a%20b",
		"dot":       ".",
		"dotdot":    "..",
		"257 bytes": strings.Repeat("x", 257),
		"slash":     "a%2Fb",
		"percent":   "a%25b",
		"star":      "a*b",
	}
	var cases []errCase
	for what, name := range names {
		p := "/v1/counters/" + name
		in := func(op, method, suffix, body string) errCase {
			return errCase{name: op + " " + what, method: method, path: p + suffix, body: body, status: 400, code: api.CodeInvalidName}
		}
		cases = append(cases,
			in("get", http.MethodGet, "", ""),
			in("get stale", http.MethodGet, "?consistency=stale", ""),
			in("next", http.MethodPost, "/next", ""),
			in("add", http.MethodPost, "/add", `{"delta":1}`),
			in("put", http.MethodPut, "", `{"value":1}`),
			in("delete", http.MethodDelete, "", ""),
		)
	}
	runErrCases(t, n.URL, cases)
}

// TestPercentEncodedNames: a path segment may percent-encode any byte; the
// name is the decoded segment. RFC 3986 §2.3 makes %61 and "a" the same URI,
// and clients such as JavaScript's encodeURIComponent encode ':' and '@',
// which SPEC §2 allows in names.
func TestPercentEncodedNames(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	wantOK(t, sendJSON(t, http.MethodPut, n.URL+"/v1/counters/user:42@eu", `{"value":42}`), 200)
	wantOK(t, sendJSON(t, http.MethodPut, n.URL+"/v1/counters/abc", `{"value":7}`), 200)
	for _, tc := range []struct{ path, id string }{
		{"/v1/counters/user%3A42%40eu", "user:42@eu"},
		{"/v1/counters/%61bc", "abc"},
	} {
		r := send(t, http.MethodGet, n.URL+tc.path, nil)
		if r.status != http.StatusOK {
			t.Errorf("GET %s (the counter %q): want 200, got %s", tc.path, tc.id, r)
			continue
		}
		var c api.Counter
		decodeStrict(t, r.body, &c, counterKeys...)
		if c.ID != tc.id {
			t.Errorf("GET %s: want counter %q, got %+v", tc.path, tc.id, c)
		}
	}
}

func TestNotFound(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	runErrCases(t, n.URL, []errCase{
		{name: "unknown v1 endpoint", method: http.MethodGet, path: "/v1/nope", status: 404, code: api.CodeNotFound},
		{name: "unknown counter op", method: http.MethodPost, path: "/v1/counters/c/bogus", status: 404, code: api.CodeNotFound},
		{name: "unknown top-level", method: http.MethodGet, path: "/nope", status: 404, code: api.CodeNotFound},
		{name: "unknown v1 POST", method: http.MethodPost, path: "/v1/widgets/w", body: `{}`, status: 404, code: api.CodeNotFound},
	})
}

func TestRuleRefusals(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	const post, put, del = http.MethodPost, http.MethodPut, http.MethodDelete
	c409 := func(name, setup, method, path, body string, code api.Code) errCase {
		return errCase{name: name, setup: setup, method: method, path: path, body: body, status: 409, code: code, logged: true}
	}
	const nearMax = `{"value":9223372036854775806}`
	const nearMin = `{"value":-9223372036854775807}`
	const mono = `{"value":10,"monotonic":true}`
	runErrCases(t, n.URL, []errCase{
		c409("next overflows", nearMax, post, "/next?count=2", "", api.CodeOverflow),
		c409("next at max", `{"value":9223372036854775807}`, post, "/next", "", api.CodeOverflow),
		c409("next increment overflows", `{"value":9223372036854775000,"increment":4611686018427387904}`, post, "/next", "", api.CodeOverflow),
		c409("next count overflows", `{"value":0,"increment":4611686018427387904}`, post, "/next?count=3", "", api.CodeOverflow),
		c409("add overflows", nearMax, post, "/add", `{"delta":2}`, api.CodeOverflow),
		c409("add underflows", nearMin, post, "/add", `{"delta":-2}`, api.CodeOverflow),
		c409("add default overflows", "", post, "/add", `{"delta":1,"default":9223372036854775807}`, api.CodeOverflow),
		c409("set lowers monotonic", mono, put, "", `{"value":9}`, api.CodeNotMonotonic),
		c409("add negative to monotonic", mono, post, "/add", `{"delta":-1}`, api.CodeNotMonotonic),
		c409("turn monotonic off", mono, put, "", `{"monotonic":false}`, api.CodeNotMonotonic),
		c409("delete monotonic", mono, del, "", "", api.CodeNotMonotonic),
		c409("delete monotonic force=false", mono, del, "?force=false", "", api.CodeNotMonotonic),
	})

	t.Run("monotonic allows raising and reconfiguring; force delete works", func(t *testing.T) {
		b := n.URL + "/v1/counters/mono-ok"
		wantOK(t, sendJSON(t, put, b, mono), 200)
		wantOK(t, sendJSON(t, put, b, `{"value":10}`), 200) // not lower
		wantOK(t, sendJSON(t, post, b+"/add", `{"delta":0}`), 200)
		wantOK(t, sendJSON(t, put, b, `{"increment":3,"offset":1,"monotonic":true}`), 200)
		r := sendJSON(t, del, b+"?force=true", "")
		wantOK(t, r, http.StatusNoContent)
		if len(r.body) != 0 {
			t.Errorf("204 with a body: %q", r.body)
		}
		if c := getCounter(t, n.URL, "mono-ok"); c != (api.Counter{ID: "mono-ok", Increment: 1}) {
			t.Errorf("after a forced delete the counter should read as defaults, got %+v", c)
		}
	})
}

func TestConflict(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	wantOK(t, sendJSON(t, http.MethodPut, n.URL+"/v1/counters/cas", `{"value":3,"increment":2,"offset":1}`), 200)
	want := getCounter(t, n.URL, "cas")
	r := sendJSON(t, http.MethodPut, n.URL+"/v1/counters/cas", `{"value":5,"if_value":4}`)
	m := checkError(t, r, http.StatusConflict, api.CodeConflict)
	var cur api.Counter
	decodeStrict(t, m["current"], &cur, counterKeys...)
	if cur != want {
		t.Errorf("current: want %+v, got %+v", want, cur)
	}
	if got := getCounter(t, n.URL, "cas"); got != want {
		t.Errorf("conflict changed the counter: %+v -> %+v", want, got)
	}

	// if_value on a never-written counter compares with 0.
	r = sendJSON(t, http.MethodPut, n.URL+"/v1/counters/cas-fresh", `{"value":5,"if_value":1}`)
	m = checkError(t, r, http.StatusConflict, api.CodeConflict)
	decodeStrict(t, m["current"], &cur, counterKeys...)
	if cur != (api.Counter{ID: "cas-fresh", Increment: 1}) {
		t.Errorf("current of a never-written counter: got %+v", cur)
	}
	r = sendJSON(t, http.MethodPut, n.URL+"/v1/counters/cas-fresh", `{"value":5,"if_value":0}`)
	wantOK(t, r, 200)
	if got := getCounter(t, n.URL, "cas-fresh"); got.Value != 5 {
		t.Errorf("CAS from 0 on a fresh counter: want 5, got %+v", got)
	}
	// A matching if_value succeeds.
	wantOK(t, sendJSON(t, http.MethodPut, n.URL+"/v1/counters/cas", `{"value":9,"if_value":3}`), 200)
	if got := getCounter(t, n.URL, "cas"); got.Value != 9 {
		t.Errorf("matching CAS: want 9, got %+v", got)
	}
}

// chunked hides its length so the request goes out chunked.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestTooLarge(t *testing.T) {
	const limit = 64
	n := harness.StartInMem(t, httpapi.Config{MaxBody: limit})
	big := `{"delta":1}` + strings.Repeat(" ", 200)
	for _, tc := range []struct {
		name, method, path string
		chunk              bool
	}{
		{"add declared", http.MethodPost, "/add", false},
		{"add chunked", http.MethodPost, "/add", true},
		{"put declared", http.MethodPut, "", false},
		{"put chunked", http.MethodPut, "", true},
		{"next declared", http.MethodPost, "/next", false},
		// next ignores its body, but SPEC §2 says any body over the limit is
		// 413; the same bytes declared up front are refused, so must these be.
		{"next chunked", http.MethodPost, "/next", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := big
			if tc.method == http.MethodPut {
				body = `{"value":1}` + strings.Repeat(" ", 200)
			}
			wantOK(t, sendJSON(t, http.MethodPut, n.URL+"/v1/counters/big", `{"value":100}`), 200)
			before, beforeIdx := stateOf(t, n.URL)
			var r io.Reader = strings.NewReader(body)
			if tc.chunk {
				r = chunked{r}
			}
			resp := send(t, tc.method, n.URL+"/v1/counters/big"+tc.path, r)
			checkError(t, resp, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
			after, afterIdx := stateOf(t, n.URL)
			if before != after || beforeIdx != afterIdx {
				t.Errorf("413 changed state:\nbefore %d %s\nafter  %d %s", beforeIdx, before, afterIdx, after)
			}
		})
	}
	t.Run("at the limit is accepted", func(t *testing.T) {
		body := `{"delta":1}`
		body += strings.Repeat(" ", limit-len(body))
		wantOK(t, send(t, http.MethodPost, n.URL+"/v1/counters/fits/add", chunked{strings.NewReader(body)}), 200)
		wantOK(t, send(t, http.MethodPost, n.URL+"/v1/counters/fits/add", strings.NewReader(body)), 200)
		if c := getCounter(t, n.URL, "fits"); c.Value != 2 {
			t.Errorf("want 2, got %+v", c)
		}
	})
}

func TestIdempotencyMismatch(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	b := n.URL + "/v1/counters/"
	key := []string{api.HeaderIdempotencyKey, "mismatch-key-1"}
	first := sendJSON(t, http.MethodPost, b+"im-a/add", `{"delta":1}`, key...)
	wantOK(t, first, 200)

	for _, tc := range []struct{ name, method, url, body string }{
		{"different body", http.MethodPost, b + "im-a/add", `{"delta":2}`},
		{"different default", http.MethodPost, b + "im-a/add", `{"delta":1,"default":4}`},
		{"different path", http.MethodPost, b + "im-b/add", `{"delta":1}`},
		{"different op", http.MethodPost, b + "im-a/next", ``},
		{"different method", http.MethodPut, b + "im-a", `{"value":1}`},
		{"delete", http.MethodDelete, b + "im-a", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := stateOf(t, n.URL)
			r := sendJSON(t, tc.method, tc.url, tc.body, key...)
			checkError(t, r, http.StatusUnprocessableEntity, api.CodeIdempotencyMismatch)
			after, _ := stateOf(t, n.URL)
			if before != after {
				t.Errorf("422 changed state:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	if c := getCounter(t, n.URL, "im-a"); c.Value != 1 {
		t.Errorf("im-a: want 1, got %+v", c)
	}
	if c := getCounter(t, n.URL, "im-b"); c.Value != 0 || c.Index != 0 {
		t.Errorf("im-b must never have been written, got %+v", c)
	}
	// The original request with the key still replays.
	again := sendJSON(t, http.MethodPost, b+"im-a/add", `{"delta":1}`, key...)
	wantOK(t, again, 200)
	if string(again.body) != string(first.body) || again.header.Get(api.HeaderReplayed) != "true" {
		t.Errorf("replay after mismatches: want %s replayed, got %s (%s=%q)", first.body, again.body, api.HeaderReplayed, again.header.Get(api.HeaderReplayed))
	}
}

// TestJSONErrorsAreForPeople: a malformed body is refused with a sentence
// that says where and what, never a Go type's name, and a document body is
// held to the same syntax as every other body.
func TestJSONErrorsAreForPeople(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	for _, tc := range []struct {
		path, method, body, want string
	}{
		{"/v1/counters/c/add", http.MethodPost, `{"delta":1,"delta":2}`, `member "delta" appears twice`},
		{"/v1/counters/c/add", http.MethodPost, `{"Delta":1}`, `unknown field "Delta" (field names are case-sensitive)`},
		{"/v1/counters/c/add", http.MethodPost, `{"delta":"1"}`, `field "delta" must be an integer (64-bit, signed), got a string`},
		{"/v1/counters/c/add", http.MethodPost, `{"delta":true}`, `field "delta" must be an integer`},
		{"/v1/counters/c/add", http.MethodPost, `{"delta":1`, `the JSON ends early`},
		{"/v1/counters/c/add", http.MethodPost, `[1]`, `must be an object`},
		{"/v1/queues/q/join", http.MethodPost, "{\"process_id\":\"p\xff\"}", `invalid UTF-8`},
		{"/v1/queues/q/join", http.MethodPost, `{"process_id":"p","tags":{"a":"1","a":"2"}}`, `appears twice`},
		{"/v1/docs/d", http.MethodPut, `{"a":1,"a":2}`, `member "a" appears twice`},
		{"/v1/docs/d", http.MethodPut, "{\"a\":\"\xfe\"}", `invalid UTF-8`},
		{"/v1/docs/d", http.MethodPatch, `{"a":{"b":1,"b":null}}`, `appears twice`},
	} {
		r := sendJSON(t, tc.method, n.URL+tc.path, tc.body)
		m := checkError(t, r, http.StatusBadRequest, api.CodeBadRequest)
		msg := string(m["error"])
		if !strings.Contains(msg, strings.ReplaceAll(tc.want, `"`, `\"`)) {
			t.Errorf("%s %s %q: %s, want it to say %s", tc.method, tc.path, tc.body, msg, tc.want)
		}
		for _, leak := range []string{"api.", "fsm.", "struct", "int64", "Go value"} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s %q: the message %s names Go internals (%s)", tc.path, tc.body, msg, leak)
			}
		}
	}
	checkError(t, send(t, http.MethodGet, n.URL+"/v1/docs/d", nil), http.StatusNotFound, api.CodeNotFound) // never written
}

// TestMethodsOfAKnownPath: a known path with another method is a 405 that
// lists the methods it takes in Allow (OPTIONS answers with them), not a
// 404; an unknown path is a 404; both in the JSON error body.
func TestMethodsOfAKnownPath(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	for _, m := range []string{http.MethodHead, http.MethodPatch, http.MethodPost, "BREW"} {
		r := send(t, m, n.URL+"/v1/counters/c", nil)
		if m == http.MethodHead {
			if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") == "" {
				t.Errorf("HEAD on a counter: %s, Allow %q", r, r.header.Get("Allow"))
			}
			continue
		}
		checkError(t, r, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed)
		allow := r.header.Get("Allow")
		for _, want := range []string{"GET", "PUT", "DELETE"} {
			if !strings.Contains(allow, want) || !strings.Contains(string(r.body), want) {
				t.Errorf("%s on a counter: Allow %q, body %s; want %s in both", m, allow, r.body, want)
			}
		}
	}
	r := send(t, http.MethodOptions, n.URL+"/v1/counters/c", nil)
	if r.status != http.StatusNoContent || !strings.Contains(r.header.Get("Allow"), "PUT") {
		t.Errorf("OPTIONS on a counter: %s, Allow %q", r, r.header.Get("Allow"))
	}
	checkError(t, send(t, http.MethodGet, n.URL+"/v2/nothing/here", nil), http.StatusNotFound, api.CodeNotFound)
}

// TestNoCrossSiteWrites: a web page of another origin cannot make an
// operator's browser write (403), nor can a form post (415); reads stay
// open, and curl -d's default content type is read as JSON.
func TestNoCrossSiteWrites(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{AllowedOrigins: []string{"https://console.example"}})
	add := n.URL + "/v1/counters/c/add"
	for _, tc := range []struct {
		name    string
		headers []string
		status  int
		code    api.Code
	}{
		{"a foreign page", []string{"Origin", "https://evil.example"}, 403, api.CodeForbidden},
		{"an opaque origin", []string{"Origin", "null"}, 403, api.CodeForbidden},
		{"another port of this host", []string{"Origin", "http://127.0.0.1:1"}, 403, api.CodeForbidden},
		{"a form post as text/plain", []string{"Content-Type", "text/plain"}, 415, api.CodeUnsupportedMediaType},
		{"a multipart form", []string{"Content-Type", "multipart/form-data; boundary=x"}, 415, api.CodeUnsupportedMediaType},
		{"a content type that does not parse", []string{"Content-Type", "a/b; ;"}, 415, api.CodeUnsupportedMediaType},
	} {
		r := sendJSON(t, http.MethodPost, add, `{"delta":5}`, tc.headers...)
		checkError(t, r, tc.status, tc.code)
	}
	if c := getCounter(t, n.URL, "c"); c.Value != 0 {
		t.Fatalf("refused requests changed the counter: %+v", c)
	}
	for _, headers := range [][]string{
		{"Origin", n.URL},                                     // this node's own page
		{"Origin", "https://console.example"},                 // -allowed-origins
		{"Content-Type", "application/x-www-form-urlencoded"}, // curl -d
		{"Content-Type", "application/json; charset=utf-8"},
	} {
		wantOK(t, sendJSON(t, http.MethodPost, add, `{"delta":1}`, headers...), http.StatusOK)
	}
	wantOK(t, send(t, http.MethodGet, n.URL+"/v1/counters/c", nil, "Origin", "https://evil.example"), http.StatusOK)
	if c := getCounter(t, n.URL, "c"); c.Value != 4 {
		t.Fatalf("counter after the accepted writes: %+v, want 4", c)
	}
}

// TestRepeatedIdempotencyKey: two Idempotency-Key headers are a 400, not
// one of them taken at random.
func TestRepeatedIdempotencyKey(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	req, err := http.NewRequest(http.MethodPost, n.URL+"/v1/counters/k/next", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Add(api.HeaderIdempotencyKey, "a")
	req.Header.Add(api.HeaderIdempotencyKey, "b")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("two keys: %s", resp.Status)
	}
	if c := getCounter(t, n.URL, "k"); c.Value != 0 {
		t.Fatalf("the refused write minted: %+v", c)
	}
}

// rawRequest opens a connection to base and writes head (request line and
// headers, CRLF-terminated) and the first part of a body, leaving the rest
// unsent.
func rawRequest(t *testing.T, base, head, partial string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head+"\r\n"+partial); err != nil {
		t.Fatal(err)
	}
	return c
}

// readResponse reads one response from c, bounded by a generous deadline
// (a guard against a hang, not a measure of speed).
func readResponse(t *testing.T, c net.Conn, req *http.Request) *http.Response {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	return resp
}

// TestSlowBodyGets408: a body trickled slower than the body timeout is
// refused with 408 and the connection closed; before, only the headers had
// a timeout and such a connection was held for good.
func TestSlowBodyGets408(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{BodyTimeout: 300 * time.Millisecond})
	host := strings.TrimPrefix(n.URL, "http://")
	head := fmt.Sprintf("PUT /v1/counters/c HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 20\r\n", host)
	c := rawRequest(t, n.URL, head, `{"val`)
	resp := readResponse(t, c, &http.Request{Method: http.MethodPut})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), `"code":"request_timeout"`) || !resp.Close {
		t.Fatalf("slow body: %s %s (close %v)", resp.Status, body, resp.Close)
	}
	if c := getCounter(t, n.URL, "c"); c.Value != 0 || c.Index != 0 {
		t.Fatalf("the counter changed: %+v", c)
	}
}

// TestOneRestoreAtATime: while a backup is being uploaded, a second
// restore on the node gets 503 with Retry-After; nothing is allocated for
// the size the first declared.
func TestOneRestoreAtATime(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	host := strings.TrimPrefix(n.URL, "http://")
	head := fmt.Sprintf("POST /v1/snapshot HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: 200000000\r\n", host, api.ContentTypeBackup)
	rawRequest(t, n.URL, head, "COUNTD-BACKUP")
	var r reply
	harness.WaitFor(t, 10*time.Second, "the second restore to be refused while the first is in progress", func() bool {
		r = sendJSON(t, http.MethodPost, n.URL+"/v1/snapshot", "x", "Content-Type", api.ContentTypeBackup)
		return r.status == http.StatusServiceUnavailable
	})
	checkError(t, r, http.StatusServiceUnavailable, api.CodeNoLeader)
	if r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "another backup is being restored") {
		t.Fatalf("second restore: %s, Retry-After %q", r, r.header.Get("Retry-After"))
	}
}

// TestConnsPerClient: one client holds at most max connections; a further
// one is closed at once, and a slot comes back when a connection closes.
func TestConnsPerClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	go func() { _ = srv.Serve(httpapi.LimitConnsPerClient(ln, 3)) }()
	t.Cleanup(func() { srv.Close() })
	get := func(c net.Conn) error {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	var conns []net.Conn
	for i := range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := get(c); err != nil {
			t.Fatalf("connection %d within the cap: %v", i+1, err)
		}
		conns = append(conns, c)
	}
	over, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if err := get(over); err == nil {
		t.Fatal("a fourth connection was served")
	}
	conns[0].Close()
	harness.WaitFor(t, 10*time.Second, "a slot to come back", func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return false
		}
		defer c.Close()
		return get(c) == nil
	})
}
