package e2e

// The production configuration of SPEC §7 on real processes: mutual TLS,
// an encrypted gossip and ACLs, and the attacks of issue 11 against it.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/countd/countd/api"
	"github.com/countd/countd/internal/harness"
	"github.com/countd/countd/tlsutil"
)

// secureCluster forms a three-node cluster with TLS, a gossip key and ACLs.
func secureCluster(t *testing.T) (*harness.ProcessCluster, *harness.Secure) {
	t.Helper()
	sec, err := harness.NewSecure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := harness.NewTestProcessCluster(t, harness.ProcessSpec{Size: 3, Bin: countdBin, Expect: true, Secure: sec})
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	return c, sec
}

// ctl runs countctl and returns its stdout, stderr and exit code.
func ctl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(countctlBin, args...)
	cmd.Env = append(os.Environ(), "COUNTD_TOKEN=", "COUNTD_CACERT=", "COUNTD_ADDR=")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("countctl %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func TestSecureClusterEndToEnd(t *testing.T) {
	c, sec := secureCluster(t)
	leader, err := c.Leader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	follower := c.Others(leader)[0]
	if !strings.HasPrefix(follower.URL(), "https://") {
		t.Fatalf("a secured node's URL is %s", follower.URL())
	}

	// countctl over TLS with the management token, given only a follower:
	// it follows the 307 to the leader's https:// address with the token.
	mgmt := append([]string{"-a", follower.URL()}, sec.CountctlFlags()...)
	out, errOut, code := ctl(t, append(mgmt, "-i", "orders.1", "counter", "next", "--count", "3", "-o", "text")...)
	if code != 0 || out != "1\n2\n3\n" {
		t.Fatalf("mint through a follower: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// An application token, scoped to a prefix.
	out, errOut, code = ctl(t, append(mgmt, "acl", "token", "create", "--description", "orders", "--rule", "counters:orders.:write")...)
	if code != 0 {
		t.Fatalf("acl token create: exit %d: %s", code, errOut)
	}
	var app api.ACLToken
	if err := json.Unmarshal([]byte(out), &app); err != nil || app.Secret == "" {
		t.Fatalf("acl token create printed %q: %v", out, err)
	}
	appArgs := []string{"-a", follower.URL(), "--ca-cert", sec.CA, "--token", app.Secret}
	if out, errOut, code = ctl(t, append(appArgs, "-i", "orders.1", "counter", "next", "-o", "text")...); code != 0 || out != "4\n" {
		t.Fatalf("app token minting its own counter: exit %d, %q, %q", code, out, errOut)
	}
	_, errOut, code = ctl(t, append(appArgs, "-i", "invoices", "counter", "next")...)
	if code != 1 || !strings.Contains(errOut, "counters:write") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("app token on another counter: exit %d, stderr %q", code, errOut)
	}
	// No token, or no CA: refused, one line each.
	_, errOut, code = ctl(t, "-a", follower.URL(), "--ca-cert", sec.CA, "-i", "orders.1", "counter", "get")
	if code != 1 || !strings.Contains(errOut, "token") {
		t.Fatalf("without a token: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = ctl(t, "-a", follower.URL(), "--token", sec.Token, "--timeout", "3s", "-i", "orders.1", "counter", "get")
	if code != 1 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("without the CA: exit %d, stderr %q", code, errOut)
	}

	// The HTTP attacks, unauthenticated over TLS: a forged restore, a leave.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: sec.ClientTLS()}}
	for _, req := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/snapshot?force=true", "CNTDSNAP"},
		{http.MethodPost, "/v1/cluster/leave", ""},
		{http.MethodPost, "/v1/counters/orders.1/next", ""},
	} {
		r, err := http.NewRequest(req.method, leader.URL()+req.path, strings.NewReader(req.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("unauthenticated %s %s: %s", req.method, req.path, resp.Status)
		}
	}
	// Plain HTTP on the TLS port gets nowhere.
	if resp, err := harness.Probe.Get("http://" + leader.HTTPAddr + "/v1/counters/orders.1"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP was served on a TLS port")
		}
	}

	// A forged Raft append from a peer without a certificate: refused.
	plain, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 1, 2*time.Second, hclog.New(&hclog.LoggerOptions{Output: io.Discard}))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var resp raft.AppendEntriesResponse
	forged := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte(leader.ID), Addr: []byte(leader.RaftAddr)}, Term: 1 << 40}
	if err := plain.AppendEntries(raft.ServerID(follower.ID), raft.ServerAddress(follower.RaftAddr), forged, &resp); err == nil {
		t.Fatal("a follower answered a forged append over plain TCP")
	}
	if out, errOut, code = ctl(t, append(mgmt, "-i", "orders.1", "counter", "next", "-o", "text")...); code != 0 || out != "5\n" {
		t.Fatalf("mint after the attacks: exit %d, %q, %q", code, out, errOut)
	}
}

// TestCertificateReloadOnSIGHUP: a renewed certificate written over the
// node's files is served after a SIGHUP, without a restart, and the node
// keeps taking part in Raft.
func TestCertificateReloadOnSIGHUP(t *testing.T) {
	c, sec := secureCluster(t)
	n := c.Nodes[0]
	serial := func() string {
		conn, err := tls.Dial("tcp", n.HTTPAddr, sec.ClientTLS())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	cert, key, err := sec.Cert(n.ID)
	if err != nil {
		t.Fatal(err)
	}
	renewed := filepath.Join(sec.Dir, "renewed")
	nc, nk, err := tlsutil.CreateCert(renewed, sec.CA, filepath.Join(sec.Dir, tlsutil.CAKeyFile), tlsutil.CertRequest{Name: n.ID})
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{nc: cert, nk: key} {
		if err := os.Rename(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, "the renewed certificate to be served", func() bool { return serial() != before })
	if !n.Running() {
		t.Fatal("countd stopped on SIGHUP")
	}
	// Raft and the API on every node still work with the renewed pair.
	out, errOut, code := ctl(t, append([]string{"-a", n.URL(), "-i", "after-reload", "counter", "next", "-o", "text"}, sec.CountctlFlags()...)...)
	if code != 0 || out != "1\n" {
		t.Fatalf("mint after the reload: exit %d, %q, %q", code, out, errOut)
	}
}

// TestNonLoopbackRefused: a node asked to bind off loopback without TLS, a
// gossip key and -acl refuses to start: exit 2, one line naming what is
// missing.
func TestNonLoopbackRefused(t *testing.T) {
	port := harness.MustFreePort(t)
	cmd := exec.Command(countdBin, "-data-dir", t.TempDir(), "-http-addr", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 2 || err == nil {
		t.Fatalf("exit %d (%v), want 2", code, err)
	}
	line := stderr.String()
	if strings.Count(line, "\n") != 1 || !strings.Contains(line, "-tls-ca") || !strings.Contains(line, "-acl") || !strings.Contains(line, "-insecure") {
		t.Fatalf("stderr %q, want one line naming what is missing", line)
	}
}

// TestVerifyIncomingClients: with -tls-verify-incoming a client must
// present a certificate of the cluster's CA. countctl with one mints
// through a follower that forwards writes, which reaches the leader
// presenting its own node certificate; without one it is refused.
func TestVerifyIncomingClients(t *testing.T) {
	sec, err := harness.NewSecure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := harness.NewTestProcessCluster(t, harness.ProcessSpec{Size: 3, Bin: countdBin, Expect: true, Secure: sec,
		Flags: []string{"-tls-verify-incoming", "-forward-writes"}})
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	leader := c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	follower := c.Others(leader)[0]
	base := append([]string{"-a", follower.URL()}, sec.CountctlFlags()...)
	if out, errOut, code := ctl(t, append(base, "-i", "v", "counter", "next", "-o", "text")...); code != 0 || out != "1\n" {
		t.Fatalf("with a client certificate, through a forwarding follower: exit %d, %q, %q", code, out, errOut)
	}
	_, errOut, code := ctl(t, "-a", follower.URL(), "--ca-cert", sec.CA, "--token", sec.Token, "--timeout", "3s", "-i", "v", "counter", "next")
	if code != 1 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("without a client certificate: exit %d, stderr %q", code, errOut)
	}
}

// TestDataDirIsPrivate: the data dir is 0700 and everything in it is for
// the node's own user: directories (raft's snapshot store among them) 0700,
// files 0600.
func TestDataDirIsPrivate(t *testing.T) {
	c := newCluster(t, 1, false)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	n := c.MustWaitConverged(t, c.Nodes, 1, 30*time.Second)
	if out, errOut, code := ctl(t, "-a", n.URL(), "-i", "p", "counter", "next"); code != 0 {
		t.Fatalf("mint: %s %s", out, errOut)
	}
	if _, _, exited := n.Terminate(20 * time.Second); !exited {
		t.Fatal("countd did not stop on SIGTERM")
	}
	seen := 0
	err := filepath.WalkDir(n.DataDir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
		seen++
		return nil
	})
	if err != nil || seen < 3 {
		t.Fatalf("walked %d entries of %s: %v", seen, n.DataDir, err)
	}
}
