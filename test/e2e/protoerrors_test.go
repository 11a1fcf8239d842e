package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/countd/countd/api"
)

// TestUnparsableRequestIsJSON: a real countd, over TLS in the production
// configuration, answers a request line net/http cannot parse with a JSON
// error like every other, not net/http's plain text.
func TestUnparsableRequestIsJSON(t *testing.T) {
	c, sec := secureCluster(t)
	n := c.Nodes[0]
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.HTTPAddr, sec.Auth.TLS.Clone())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /v1/counters/%zz HTTP/1.1\r\nHost: "+n.HTTPAddr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	var e api.Error
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || e.Code != api.CodeBadRequest {
		t.Errorf("GET /v1/counters/%%zz: %s %s %q; want a JSON 400 bad_request", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	t.Logf("GET /v1/counters/%%zz over TLS: %s %s", resp.Status, body)
}
