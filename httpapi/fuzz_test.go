package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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
