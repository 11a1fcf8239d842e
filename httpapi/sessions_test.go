package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func TestSessionsOverHTTP(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	decode := func(r reply) api.Session {
		t.Helper()
		wantOK(t, r, http.StatusOK)
		var s api.Session
		decodeStrict(t, r.body, &s, "id", "name", "ttl", "expires_in_ms", "index")
		return s
	}
	for _, bad := range []string{`{"ttl":"500ms"}`, `{"ttl":"25h"}`, `{"ttl":"soon"}`, `{}`} {
		checkError(t, sendJSON(t, http.MethodPost, n.URL+"/v1/sessions", bad), http.StatusBadRequest, api.CodeBadRequest)
	}
	s := decode(sendJSON(t, http.MethodPost, n.URL+"/v1/sessions", `{"ttl":"10s","name":"worker-1"}`))
	if s.ID == "" || s.Name != "worker-1" || s.TTL != "10s" || s.ExpiresInMs <= 9000 || s.ExpiresInMs > 10000 {
		t.Fatalf("created: %+v", s)
	}
	// A retry with the same Idempotency-Key is the same session.
	key := []string{api.HeaderIdempotencyKey, "session-1"}
	first := decode(sendJSON(t, http.MethodPost, n.URL+"/v1/sessions", `{"ttl":"1m"}`, key...))
	again := sendJSON(t, http.MethodPost, n.URL+"/v1/sessions", `{"ttl":"1m"}`, key...)
	if got := decode(again); got.ID != first.ID || again.header.Get(api.HeaderReplayed) != "true" {
		t.Fatalf("retry created %s, first %s", got.ID, first.ID)
	}

	got := decode(sendJSON(t, http.MethodGet, n.URL+"/v1/sessions/"+s.ID, ""))
	if got.ID != s.ID || got.Index != s.Index {
		t.Fatalf("get: %+v", got)
	}
	renewed := decode(sendJSON(t, http.MethodPost, n.URL+"/v1/sessions/"+s.ID+"/renew", ""))
	if renewed.ID != s.ID {
		t.Fatalf("renew: %+v", renewed)
	}
	r := sendJSON(t, http.MethodGet, n.URL+"/v1/sessions?limit=1", "")
	wantOK(t, r, http.StatusOK)
	var page api.SessionList
	if err := json.Unmarshal(r.body, &page); err != nil || len(page.Sessions) != 1 || page.Next == nil {
		t.Fatalf("first page: %s", r.body)
	}

	wantOK(t, sendJSON(t, http.MethodDelete, n.URL+"/v1/sessions/"+s.ID, ""), http.StatusNoContent)
	checkError(t, sendJSON(t, http.MethodPost, n.URL+"/v1/sessions/"+s.ID+"/renew", ""), http.StatusNotFound, api.CodeNotFound)
	checkError(t, sendJSON(t, http.MethodGet, n.URL+"/v1/sessions/"+s.ID, ""), http.StatusNotFound, api.CodeNotFound)
	checkError(t, sendJSON(t, http.MethodGet, n.URL+"/v1/sessions/no%20such", ""), http.StatusNotFound, api.CodeNotFound)
}

func TestSessionExpiresWithoutRenew(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	r := sendJSON(t, http.MethodPost, n.URL+"/v1/sessions", `{"ttl":"1s"}`)
	wantOK(t, r, http.StatusOK)
	var s api.Session
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	harness.WaitFor(t, 10*time.Second, "the session to expire", func() bool {
		return sendJSON(t, http.MethodGet, n.URL+"/v1/sessions/"+s.ID, "").status == http.StatusNotFound
	})
	// It ended after its TTL, not before (the leader started before it was
	// created, so no grace applies).
	if took := time.Since(created); took < time.Second {
		t.Fatalf("a 1s session ended after %v", took)
	}
}

func TestEphemeralMemberOverHTTP(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	r := sendJSON(t, http.MethodPost, n.URL+"/v1/sessions", `{"ttl":"1m"}`)
	wantOK(t, r, http.StatusOK)
	var s api.Session
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatal(err)
	}
	checkError(t, sendJSON(t, http.MethodPost, n.URL+"/v1/queues/q/join", `{"process_id":"p","session":"no-such-session"}`), http.StatusNotFound, api.CodeNotFound)
	r = sendJSON(t, http.MethodPost, n.URL+"/v1/queues/q/join", `{"process_id":"p","session":"`+s.ID+`"}`)
	wantOK(t, r, http.StatusOK)
	var tk api.Ticket
	if err := json.Unmarshal(r.body, &tk); err != nil || tk.Session != s.ID {
		t.Fatalf("ephemeral ticket: %s", r.body)
	}
	wantOK(t, sendJSON(t, http.MethodDelete, n.URL+"/v1/sessions/"+s.ID, ""), http.StatusNoContent)
	r = sendJSON(t, http.MethodGet, n.URL+"/v1/queues/q", "")
	var q api.Queue
	if err := json.Unmarshal(r.body, &q); err != nil || len(q.Members) != 0 || q.FencingToken != 2 {
		t.Fatalf("queue after its member's session ended: %s", r.body)
	}
}
