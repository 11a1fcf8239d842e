package httpapi_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
	"github.com/countd/countd/tlsutil"
)

// TestProtocolErrorsAreJSON: requests net/http cannot parse, which it
// answers before any handler runs, get JSON error bodies with a code like
// every other error, over plain HTTP and over TLS; and requests it can
// parse still see their TLS state.
func TestProtocolErrorsAreJSON(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	dir := t.TempDir()
	caCert, caKey, err := tlsutil.CreateCA(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := tlsutil.CreateCert(dir, caCert, caKey, tlsutil.CertRequest{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tlsutil.LoadKeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tlsutil.LoadCAPool(caCert)
	if err != nil {
		t.Fatal(err)
	}

	serve := func(ln net.Listener) string {
		srv := &http.Server{Handler: n.API, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 4 << 10}
		go func() { _ = srv.Serve(httpapi.JSONProtocolErrors(ln)) }()
		t.Cleanup(func() { _ = srv.Close() })
		return ln.Addr().String()
	}
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plainAddr := serve(plainLn)
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := serve(tls.NewListener(tlsLn, tlsutil.ServerConfig(kp, pool, false)))
	dialers := map[string]func() (net.Conn, error){
		"plain": func() (net.Conn, error) { return net.DialTimeout("tcp", plainAddr, 5*time.Second) },
		"tls": func() (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		},
	}
	for name, dial := range dialers {
		for _, tc := range []struct {
			request, status string
			code            api.Code
		}{
			{"GET /v1/counters/%zz HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request", api.CodeBadRequest},
			{"GET /v1/counters/a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "400 Bad Request", api.CodeBadRequest},
			{"GET /v1/counters/a HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", "431 Request Header Fields Too Large", api.CodeTooLarge},
		} {
			c, err := dial()
			if err != nil {
				t.Fatalf("%s: dial: %v", name, err)
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tc.request); err != nil {
				t.Fatalf("%s: write: %v", name, err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("%s %q: read the answer: %v", name, tc.request[:30], err)
			}
			body, _ := io.ReadAll(resp.Body)
			c.Close()
			var e api.Error
			if resp.Status != tc.status || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || e.Code != tc.code || e.Error == "" {
				t.Errorf("%s %q: %s %s %q; want %s with a JSON %s error", name, tc.request[:30], resp.Status, resp.Header.Get("Content-Type"), body, tc.status, tc.code)
			}
		}
	}

	// A request that parses is served as before, and over TLS it knows it
	// came over TLS: a page of this https origin may write.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest(http.MethodPost, "https://"+tlsAddr+"/v1/counters/tls/next", nil)
	req.Header.Set("Origin", "https://"+tlsAddr)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"value":1`) {
		t.Errorf("a same-origin write over TLS: %s %s", resp.Status, body)
	}
}
