package httpapi_test

// Helpers that run real countd nodes (cluster.Node + httpapi.Server on a
// loopback listener) for the HTTP API tests. No mocks: every request goes
// through net/http, echo, the node and Raft.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/internal/harness"
)

// httpClient never follows redirects, so tests see the 307s themselves.
var httpClient = harness.NoRedirects(20 * time.Second)

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string {
	return fmt.Sprintf("HTTP %d %s", r.status, strings.TrimSpace(string(r.body)))
}

// send makes one request. body may be nil; headers are name, value pairs.
func send(tb testing.TB, method, url string, body io.Reader, headers ...string) reply {
	tb.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		tb.Fatalf("new request %s %s: %v", method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func sendJSON(tb testing.TB, method, url, body string, headers ...string) reply {
	tb.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return send(tb, method, url, r, headers...)
}

// indexOf parses X-Countd-Index, failing if it is missing.
func indexOf(tb testing.TB, r reply) uint64 {
	tb.Helper()
	h := r.header.Get(api.HeaderIndex)
	if h == "" {
		tb.Fatalf("response has no %s header: %s", api.HeaderIndex, r)
	}
	v, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		tb.Fatalf("%s header %q is not an index: %v", api.HeaderIndex, h, err)
	}
	return v
}

// checkError checks an error response: status, exact {"error","code"} shape
// (plus the optional "leader" and "current"), a human sentence, and the
// X-Countd-Index header. It returns the decoded body.
func checkError(tb testing.TB, r reply, status int, code api.Code) map[string]json.RawMessage {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status: want %d %s, got %s", status, code, r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("Content-Type: want application/json, got %q", ct)
	}
	indexOf(tb, r)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("error body is not a JSON object: %v: %s", err, r.body)
	}
	for k := range m {
		switch k {
		case "error", "code", "leader", "current":
		default:
			tb.Errorf("error body has unexpected field %q: %s", k, r.body)
		}
	}
	var e api.Error
	if err := json.Unmarshal(r.body, &e); err != nil {
		tb.Fatalf("decode error body: %v: %s", err, r.body)
	}
	if e.Code != code {
		tb.Errorf("code: want %q, got %q (%s)", code, e.Code, r.body)
	}
	if len(e.Error) < 8 || !strings.Contains(e.Error, " ") {
		tb.Errorf("error %q is not a human sentence", e.Error)
	}
	return m
}

// wantOK fails unless r has the given 2xx status and an X-Countd-Index.
func wantOK(tb testing.TB, r reply, status int) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("want %d, got %s", status, r)
	}
	indexOf(tb, r)
}

// decodeStrict decodes body into v, rejecting unknown fields, and checks
// that exactly the fields in keys are present.
func decodeStrict(tb testing.TB, body []byte, v any, keys ...string) {
	tb.Helper()
	objectKeys(tb, body, keys...)
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("decode %T: %v: %s", v, err, body)
	}
}

var counterKeys = []string{"id", "value", "increment", "offset", "monotonic", "cache", "index"}

// getCounter reads a counter linearizably from base (which must lead).
func getCounter(tb testing.TB, base, id string) api.Counter {
	tb.Helper()
	r := send(tb, http.MethodGet, base+"/v1/counters/"+id, nil)
	wantOK(tb, r, http.StatusOK)
	var c api.Counter
	decodeStrict(tb, r.body, &c, counterKeys...)
	return c
}
