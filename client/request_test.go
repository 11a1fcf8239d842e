package client_test

// What the typed calls put on the wire, checked against a recording fake
// server: the parts a real node accepts in more than one spelling.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

type seen struct {
	method, uri, contentType, ifMatch, ifNoneMatch, body string
}

// recordingNode answers every request with answer and remembers it.
func recordingNode(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, func() []seen) {
	var mu sync.Mutex
	var log []seen
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/cluster" {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		log = append(log, seen{r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), r.Header.Get("If-Match"), r.Header.Get("If-None-Match"), string(b)})
		mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(s.Close)
	return s, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		out := log
		log = nil
		return out
	}
}

func TestDocumentRequests(t *testing.T) {
	s, take := recordingNode(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set(api.HeaderIndex, "9")
		_, _ = fmt.Fprint(w, `{"name":"cfg","version":2,"value":{"a":1},"index":9}`)
	})
	c := newClient(t, client.Config{Addrs: []string{s.URL}})
	ctx := ctxFor(t, 10*time.Second)
	value := json.RawMessage(`{"a": 1}`)
	for _, tc := range []struct {
		call func() error
		want seen
	}{
		{func() error { _, err := c.PutDoc(ctx, "cfg", value); return err },
			seen{method: "PUT", uri: "/v1/docs/cfg", contentType: "application/json", body: `{"a": 1}`}},
		{func() error { _, err := c.PutDoc(ctx, "cfg", value, client.IfMatch(7)); return err },
			seen{method: "PUT", uri: "/v1/docs/cfg", contentType: "application/json", ifMatch: `"7"`, body: `{"a": 1}`}},
		{func() error { _, err := c.PutDoc(ctx, "cfg", value, client.IfAbsent()); return err },
			seen{method: "PUT", uri: "/v1/docs/cfg", contentType: "application/json", ifNoneMatch: "*", body: `{"a": 1}`}},
		{func() error {
			_, err := c.PatchDoc(ctx, "cfg", json.RawMessage(`{"b":null}`), client.IfExists())
			return err
		},
			seen{method: "PATCH", uri: "/v1/docs/cfg", contentType: "application/merge-patch+json", ifMatch: "*", body: `{"b":null}`}},
		{func() error { return c.DeleteDoc(ctx, "cfg", client.IfMatch(2)) },
			seen{method: "DELETE", uri: "/v1/docs/cfg", ifMatch: `"2"`}},
		{func() error { _, err := c.Doc(ctx, "cfg", client.Stale()); return err },
			seen{method: "GET", uri: "/v1/docs/cfg?consistency=stale"}},
	} {
		if err := tc.call(); err != nil {
			t.Errorf("%s %s: %v", tc.want.method, tc.want.uri, err)
		}
		if got := take(); len(got) != 1 || got[0] != tc.want {
			t.Errorf("sent %+v, want %+v", got, tc.want)
		}
	}
}

func TestQueueIndexes(t *testing.T) {
	// The fake takes longer than AttemptTimeout to answer a blocking read,
	// as a real node does while it waits for a change.
	const attempt = 100 * time.Millisecond
	s, take := recordingNode(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("index") != "" {
			time.Sleep(3 * attempt)
		}
		if !strings.HasSuffix(r.URL.Path, "noindex") {
			w.Header().Set(api.HeaderIndex, "42")
		}
		_, _ = fmt.Fprint(w, `{"id":"q","fencing_token":3,"config":{"min":1,"max":9,"reuse":false},"members":[],"index":40}`)
	})
	c := newClient(t, client.Config{Addrs: []string{s.URL}, AttemptTimeout: attempt})

	q, idx, err := c.WaitQueue(ctxFor(t, 10*time.Second), "q", 17, 2*time.Second)
	if err != nil || idx != 42 || q.FencingToken != 3 || q.Index != 40 || q.Members == nil {
		t.Fatalf("WaitQueue: %+v, %d, %v", q, idx, err)
	}
	if got := take(); len(got) != 1 || got[0].uri != "/v1/queues/q?index=17&wait=2s" {
		t.Errorf("sent %+v", got)
	}

	// A short deadline shortens the wait so the server answers first.
	if _, _, err := c.WaitQueue(ctxFor(t, 1200*time.Millisecond), "q", 17, time.Minute, client.Stale()); err != nil {
		t.Fatalf("WaitQueue with a short deadline: %v", err)
	}
	got := take()
	if len(got) != 1 || !strings.HasPrefix(got[0].uri, "/v1/queues/q?consistency=stale&index=17&wait=") {
		t.Fatalf("sent %+v", got)
	}
	wait, err := time.ParseDuration(strings.TrimPrefix(got[0].uri, "/v1/queues/q?consistency=stale&index=17&wait="))
	if err != nil || wait <= 0 || wait >= 1200*time.Millisecond {
		t.Errorf("wait sent with a 1.2s deadline: %v (%v)", wait, err)
	}

	if _, idx, err := c.Queue(ctxFor(t, 10*time.Second), "q"); err != nil || idx != 42 {
		t.Errorf("Queue: %d, %v", idx, err)
	}
	if _, _, err := c.Queue(ctxFor(t, 10*time.Second), "noindex"); err == nil || !strings.Contains(err.Error(), api.HeaderIndex) {
		t.Errorf("a read without %s must fail, got %v", api.HeaderIndex, err)
	}
}
