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
