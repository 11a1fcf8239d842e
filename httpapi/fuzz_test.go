package httpapi_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/countd/countd/api"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

// statusOfCode is SPEC §2's error table.
var statusOfCode = map[api.Code]int{
	api.CodeBadRequest:          400,
	api.CodeInvalidName:         400,
	api.CodeNotFound:            404,
	api.CodeWrongType:           409,
	api.CodeConflict:            409,
	api.CodeOverflow:            409,
	api.CodeNotMonotonic:        409,
	api.CodeQueueFull:           409,
	api.CodePreconditionFailed:  412,
	api.CodeTooLarge:            413,
	api.CodeIdempotencyMismatch: 422,
	api.CodeNotLeader:           307,
	api.CodeNoLeader:            503,
}

// FuzzCounterRequests sends arbitrary ids, query strings, bodies and
// Idempotency-Keys to add, put and next on a real in-memory node: the
// answer is never a 5xx, always carries X-Countd-Index, and is either the
// endpoint's success shape or {"error","code"} with the status the SPEC
// table gives that code. A refused request changes nothing.
func FuzzCounterRequests(f *testing.F) {
	n := harness.StartInMem(f, httpapi.Config{MaxBody: 256})
	h := n.HTTP.Handler

	f.Add(uint8(0), "c", "", []byte(`{"delta":1}`), "")
	f.Add(uint8(0), "c", "", []byte(`{"delta":-9223372036854775808,"default":-1}`), "k1")
	f.Add(uint8(0), "c", "", []byte(`{"delta":1} {}`), "")
	f.Add(uint8(0), "c", "", []byte(`{"delta":1,"default":9223372036854775807}`), "")
	f.Add(uint8(1), "c", "", []byte(`{"value":9223372036854775807}`), "")
	f.Add(uint8(1), "c", "", []byte(`{"value":1,"increment":4611686018427387904,"offset":-5,"monotonic":true,"if_value":0}`), "k2")
	f.Add(uint8(1), "m", "", []byte(`{"monotonic":false}`), "")
	f.Add(uint8(2), "c", "count=3", []byte(nil), "")
	f.Add(uint8(2), "c", "count=1000000", []byte(nil), "k1")
	f.Add(uint8(2), "c", "count=%zz", []byte(nil), "")
	f.Add(uint8(2), "..", "count=-1", []byte(nil), "")
	f.Add(uint8(6), "a/b", "count=1&count=2", []byte(`{}`), "\x7f")
	f.Add(uint8(4), "c", "", append([]byte(`{"delta":1}`), bytes.Repeat([]byte(" "), 250)...), "")

	f.Fuzz(func(t *testing.T, op uint8, id, query string, body []byte, key string) {
		var method, suffix string
		var keys []string
		switch op % 3 {
		case 0:
			method, suffix, keys = http.MethodPost, "/add", addKeys
		case 1:
			method, suffix, keys = http.MethodPut, "", counterKeys
		default:
			method, suffix, keys = http.MethodPost, "/next", mintKeys
		}
		var rd io.Reader = bytes.NewReader(body)
		if op&4 != 0 {
			rd = chunked{rd} // unknown length
		}
		req := httptest.NewRequest(method, "/", rd)
		req.URL.Path = "/v1/counters/" + id + suffix
		req.URL.RawQuery = query
		req.RequestURI = req.URL.RequestURI()
		if key != "" {
			req.Header[api.HeaderIdempotencyKey] = []string{key}
		}
		before, _, beforeErr := n.Node.State().Counter(id)

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		out := rec.Body.Bytes()

		if res.StatusCode >= 500 {
			t.Fatalf("%s %q ?%q key %q body %q: %d %s", method, id, query, key, body, res.StatusCode, out)
		}
		if res.Header.Get(api.HeaderIndex) == "" {
			t.Errorf("no %s header: %d %s", api.HeaderIndex, res.StatusCode, out)
		}
		if !json.Valid(out) {
			t.Fatalf("%d response is not JSON: %q", res.StatusCode, out)
		}
		if res.StatusCode == http.StatusOK {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(out, &m); err != nil || len(m) != len(keys) {
				t.Fatalf("success body is not the %v shape: %s", keys, out)
			}
			for _, k := range keys {
				if _, ok := m[k]; !ok {
					t.Fatalf("success body lacks %q: %s", k, out)
				}
			}
			if op%3 == 2 {
				var mt api.Mint
				if err := json.Unmarshal(out, &mt); err != nil {
					t.Fatal(err)
				}
				if mt.Count < 1 || mt.Step < 1 || mt.Value != mt.First+(mt.Count-1)*mt.Step {
					t.Fatalf("inconsistent mint %s", out)
				}
			}
			return
		}
		var e api.Error
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%d body is not the error shape: %v: %s", res.StatusCode, err, out)
		}
		want, known := statusOfCode[e.Code]
		if !known || want != res.StatusCode || e.Error == "" {
			t.Fatalf("status %d with code %q (SPEC: %d): %s", res.StatusCode, e.Code, want, out)
		}
		if (e.Current != nil) != (e.Code == api.CodeConflict) {
			t.Errorf("\"current\" must come with (only) a conflict: %s", out)
		}
		after, _, afterErr := n.Node.State().Counter(id)
		if (beforeErr == nil) != (afterErr == nil) || (before != nil && after != nil && *before != *after) {
			t.Errorf("refused request (%s) changed counter %q: %+v -> %+v", out, id, before, after)
		}
	})
}

// fuzzRoutes are every endpoint the fuzz target reaches, with {} where the
// fuzzed name goes.
var fuzzRoutes = []struct{ method, path string }{
	{http.MethodGet, "/v1/counters/{}"},
	{http.MethodPost, "/v1/counters/{}/next"},
	{http.MethodPost, "/v1/counters/{}/add"},
	{http.MethodPut, "/v1/counters/{}"},
	{http.MethodDelete, "/v1/counters/{}"},
	{http.MethodGet, "/v1/counters"},
	{http.MethodGet, "/v1/queues/{}"},
	{http.MethodGet, "/v1/queues/{}/members/p"},
	{http.MethodPost, "/v1/queues/{}/join"},
	{http.MethodPost, "/v1/queues/{}/leave"},
	{http.MethodPut, "/v1/queues/{}"},
	{http.MethodDelete, "/v1/queues/{}"},
	{http.MethodPost, "/v1/items"},
	{http.MethodGet, "/v1/items/{}/count"},
	{http.MethodGet, "/v1/docs/{}"},
	{http.MethodPut, "/v1/docs/{}"},
	{http.MethodPatch, "/v1/docs/{}"},
	{http.MethodDelete, "/v1/docs/{}"},
	{http.MethodPost, "/v1/snapshot"},
	{http.MethodPost, "/v1/cluster/transfer-leader"},
	{http.MethodDelete, "/v1/cluster/members/{}"},
	{http.MethodPost, "/v1/acl/tokens"},
	{"BREW", "/v1/counters/{}"},
	{http.MethodGet, "/{}"},
}

// userState is the node's state as a backup holds it, less the header
// record (the applied index moves on a refusal decided in the log). The
// fuzz target sends no Idempotency-Key, so a refusal stores nothing.
func userState(t *testing.T, n *harness.Node) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := n.Node.State().Snapshot().WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	const magic = "CNTDSNAP"
	rest := data[len(magic):]
	tag := rest[0]
	size, k := binary.Uvarint(rest[1:])
	if tag != 1 || k <= 0 {
		t.Fatalf("snapshot does not start with its header record: %q", data[:min(len(data), 32)])
	}
	return rest[1+k+int(size):]
}

// FuzzEveryEndpoint sends an arbitrary name, query, body and header to
// every endpoint of a real in-memory node: the answer is never a 5xx, an
// error is always the JSON error body with the status the SPEC gives its
// code, and a 4xx leaves every object as it was.
func FuzzEveryEndpoint(f *testing.F) {
	n := harness.StartInMem(f, httpapi.Config{MaxBody: 4096})
	h := n.HTTP.Handler
	for i, seed := range []struct {
		name, query, body, header, value string
	}{
		{"c", "", "", "", ""},
		{"c", "count=2", "", "", ""},
		{"c", "", `{"delta":1,"delta":2}`, "", ""},
		{"c", "", `{"value":1}`, "Origin", "https://evil.example"},
		{"c", "force=true", "", "", ""},
		{"c", "prefix=c&limit=0", "", "", ""},
		{"q", "index=1&wait=1ms", "", "", ""},
		{"q", "", `{"process_id":"p","tags":{"a":"b"}}`, "", ""},
		{"q", "", `{"process_id":"p"}`, "Content-Type", "text/plain"},
		{"q", "", `{"min":5,"max":1}`, "", ""},
		{"q", "", "", "", ""},
		{"", "", `[{"tenant":"t","id":"i"}]`, "", ""},
		{"t", "", "", "", ""},
		{"d", "", "", "", ""},
		{"d", "", `{"a":{"b":[1,2,{"c":null}]}}`, "If-None-Match", "*"},
		{"d", "", `{"a":null}`, "Content-Type", "application/merge-patch+json"},
		{"d", "", "", "If-Match", `"7"`},
		{"", "", "COUNTD-BACKUP\n", "", ""},
		{"", "", `{"to":"nobody"}`, "", ""},
		{"n9", "", "", "", ""},
		{"", "", `{"rules":[]}`, "", ""},
		{"c", "", "", "", ""},
		{"no/such", "", "", "", ""},
		{"%zz", "%zz", "\xff", "Idempotency-Key", ""},
	} {
		f.Add(uint8(i), seed.name, seed.query, []byte(seed.body), seed.header, seed.value)
	}
	f.Fuzz(func(t *testing.T, op uint8, name, query string, body []byte, header, value string) {
		rt := fuzzRoutes[int(op)%len(fuzzRoutes)]
		if header == api.HeaderIdempotencyKey || !validHeader(header, value) {
			header = ""
		}
		req := httptest.NewRequest(rt.method, "/", bytes.NewReader(body))
		req.URL.Path = strings.ReplaceAll(rt.path, "{}", name)
		req.URL.RawQuery = query
		if q, err := url.ParseQuery(query); err == nil && (q.Has("wait") || q.Has("index")) {
			q.Set("wait", "1ms") // a blocking query would hold the fuzzer for its whole wait
			req.URL.RawQuery = q.Encode()
		}
		req.RequestURI = req.URL.RequestURI()
		if header != "" {
			req.Header.Set(header, value)
		}
		before := userState(t, n)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		out := rec.Body.Bytes()
		what := fmt.Sprintf("%s %q ?%q %s: %q, body %q", rt.method, req.URL.Path, query, header, value, body)
		if res.StatusCode >= 500 {
			t.Fatalf("%s: %d %s", what, res.StatusCode, out)
		}
		if res.StatusCode < 400 {
			return
		}
		var e api.Error
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%s: %d body is not the error shape: %v: %q", what, res.StatusCode, err, out)
		}
		if want, known := fuzzStatusOf[e.Code]; !known || want != res.StatusCode || len(e.Error) < 8 {
			t.Fatalf("%s: status %d with code %q (SPEC: %d): %s", what, res.StatusCode, e.Code, want, out)
		}
		if after := userState(t, n); !bytes.Equal(before, after) {
			t.Fatalf("%s: refused with %d %s, yet the state changed", what, res.StatusCode, out)
		}
	})
}

// fuzzStatusOf is statusOfCode and the codes of the HTTP layer.
var fuzzStatusOf = func() map[api.Code]int {
	m := maps.Clone(statusOfCode)
	m[api.CodeMethodNotAllowed] = 405
	m[api.CodeRequestTimeout] = 408
	m[api.CodeUnsupportedMediaType] = 415
	m[api.CodeForbidden] = 403
	m[api.CodeUnauthorized] = 401
	return m
}()

// validHeader reports whether net/http could send the header at all.
func validHeader(name, value string) bool {
	if name == "" || strings.ContainsAny(name, " \t\r\n:()<>@,;\\\"/[]?={}") || strings.ContainsAny(value, "\r\n\x00") {
		return false
	}
	for _, r := range name {
		if r < '!' || r > '~' {
			return false
		}
	}
	return true
}
