package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type pki struct {
	dir, ca, caKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, err := CreateCA(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	return pki{dir: dir, ca: ca, caKey: caKey}
}

func (p pki) cert(t *testing.T, req CertRequest) *KeyPair {
	t.Helper()
	c, k, err := CreateCert(p.dir, p.ca, p.caKey, req)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := LoadKeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func (p pki) pool(t *testing.T) *x509.CertPool {
	t.Helper()
	pool, err := LoadCAPool(p.ca)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// handshake runs one TLS handshake over loopback and returns the errors
// both sides saw (nil, nil on success).
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		err = tc.Handshake()
		if err == nil {
			// TLS 1.3 clients finish before the server has checked their
			// certificate: read, so a refusal reaches the client.
			_, err = tc.Write([]byte("x"))
		}
		done <- err
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), client)
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadFull(c, make([]byte, 1))
		c.Close()
	}
	return <-done, err
}

func TestPeerTLSAcceptsOnlyNodeCertificatesOfTheCA(t *testing.T) {
	p := newPKI(t)
	n1 := p.cert(t, CertRequest{Name: "n1"})
	n2 := p.cert(t, CertRequest{Name: "n2"})
	app := p.cert(t, CertRequest{Name: "app", ClientOnly: true})
	other := newPKI(t)
	stranger := other.cert(t, CertRequest{Name: "n9"})
	pool := p.pool(t)

	if se, ce := handshake(t, PeerListenerConfig(n1, pool), PeerDialerConfig(n2, pool, "127.0.0.1")); se != nil || ce != nil {
		t.Fatalf("n2 → n1: server %v, client %v", se, ce)
	}
	for _, tc := range []struct {
		name   string
		client *tls.Config
	}{
		{"no client certificate", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}},
		{"client-only certificate", PeerDialerConfig(app, pool, "127.0.0.1")},
		{"another cluster's node", PeerDialerConfig(stranger, pool, "127.0.0.1")},
	} {
		if se, _ := handshake(t, PeerListenerConfig(n1, pool), tc.client); se == nil {
			t.Errorf("%s: the Raft listener accepted it", tc.name)
		}
	}
	// The dialler checks the listener too: another cluster's node, or a
	// name the certificate does not carry.
	if _, ce := handshake(t, PeerListenerConfig(stranger, other.pool(t)), PeerDialerConfig(n2, pool, "127.0.0.1")); ce == nil {
		t.Error("n2 accepted a listener with another CA's certificate")
	}
	if _, ce := handshake(t, PeerListenerConfig(n1, pool), PeerDialerConfig(n2, pool, "127.0.0.9")); ce == nil {
		t.Error("n2 accepted n1's certificate for an address it does not carry")
	}
}

func TestServerConfigVerifyIncoming(t *testing.T) {
	p := newPKI(t)
	n1 := p.cert(t, CertRequest{Name: "n1", IPs: []net.IP{net.ParseIP("127.0.0.2")}, DNSNames: []string{"countd.example"}})
	app := p.cert(t, CertRequest{Name: "app", ClientOnly: true})
	pool := p.pool(t)
	anon := &tls.Config{RootCAs: pool, ServerName: "countd.example"}
	if se, ce := handshake(t, ServerConfig(n1, pool, false), anon); se != nil || ce != nil {
		t.Fatalf("plain TLS: server %v, client %v", se, ce)
	}
	if se, _ := handshake(t, ServerConfig(n1, pool, true), anon); se == nil {
		t.Fatal("-tls-verify-incoming accepted a client without a certificate")
	}
	withCert := &tls.Config{RootCAs: pool, ServerName: "127.0.0.2", GetClientCertificate: app.getClientCertificate}
	if se, ce := handshake(t, ServerConfig(n1, pool, true), withCert); se != nil || ce != nil {
		t.Fatalf("client certificate: server %v, client %v", se, ce)
	}
	// A client-only certificate cannot serve.
	if _, ce := handshake(t, ServerConfig(app, pool, false), &tls.Config{RootCAs: pool, ServerName: "app"}); ce == nil {
		t.Fatal("a client-only certificate was accepted as a server's")
	}
}

func TestClientFiles(t *testing.T) {
	p := newPKI(t)
	n1 := p.cert(t, CertRequest{Name: "n1"})
	c, k, err := CreateCert(p.dir, p.ca, p.caKey, CertRequest{Name: "app", ClientOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := (ClientFiles{}).Config(); cfg != nil || err != nil {
		t.Fatalf("no files: %v, %v", cfg, err)
	}
	if _, err := (ClientFiles{CA: p.ca, Cert: c}).Config(); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
	cfg, err := ClientFiles{CA: p.ca, Cert: c, Key: k}.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.ServerName = "localhost"
	if se, ce := handshake(t, ServerConfig(n1, p.pool(t), true), cfg); se != nil || ce != nil {
		t.Fatalf("server %v, client %v", se, ce)
	}
}

func TestCreateRefusesToOverwriteAndKeepsKeysPrivate(t *testing.T) {
	p := newPKI(t)
	if _, _, err := CreateCA(p.dir, 0); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second CA in the same dir: %v", err)
	}
	c, k, err := CreateCert(p.dir, p.ca, p.caKey, CertRequest{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := CreateCert(p.dir, p.ca, p.caKey, CertRequest{Name: "n1"}); err == nil {
		t.Fatal("a second n1 overwrote the first")
	}
	for _, path := range []string{p.caKey, k} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v; want 0600", path, st.Mode().Perm(), err)
		}
	}
	if st, err := os.Stat(c); err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("%s: mode %v, %v", c, st.Mode().Perm(), err)
	}
	for _, name := range []string{"", ".", "..", "a/b", "../x"} {
		if _, _, err := CreateCert(p.dir, p.ca, p.caKey, CertRequest{Name: name}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	// A key that is not the CA's.
	other := newPKI(t)
	if _, _, err := CreateCert(p.dir, p.ca, other.caKey, CertRequest{Name: "n2"}); err == nil {
		t.Fatal("signed with a key that does not belong to the CA")
	}
	if _, _, err := CreateCert(p.dir, c, k, CertRequest{Name: "n3"}); err == nil {
		t.Fatal("a node certificate was used as a CA")
	}
}

func TestKeyPairReload(t *testing.T) {
	p := newPKI(t)
	kp := p.cert(t, CertRequest{Name: "n1"})
	first := kp.Certificate().Leaf.SerialNumber
	// Renew: a new pair under the same file names.
	renewed := filepath.Join(p.dir, "renewed")
	c, k, err := CreateCert(renewed, p.ca, p.caKey, CertRequest{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{c: kp.certFile, k: kp.keyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := kp.Reload(); err != nil {
		t.Fatal(err)
	}
	second := kp.Certificate().Leaf.SerialNumber
	if second.Cmp(first) == 0 {
		t.Fatal("Reload kept the old certificate")
	}
	pool := p.pool(t)
	var seen *x509.Certificate
	client := &tls.Config{RootCAs: pool, ServerName: "n1", VerifyConnection: func(cs tls.ConnectionState) error {
		seen = cs.PeerCertificates[0]
		return nil
	}}
	if se, ce := handshake(t, ServerConfig(kp, pool, false), client); se != nil || ce != nil {
		t.Fatalf("server %v, client %v", se, ce)
	}
	if seen.SerialNumber.Cmp(second) != 0 {
		t.Fatal("new handshakes do not use the reloaded certificate")
	}
	// A broken file is refused and the pair in use stays.
	if err := os.WriteFile(kp.keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := kp.Reload(); err == nil {
		t.Fatal("Reload accepted a broken key")
	}
	if kp.Certificate().Leaf.SerialNumber.Cmp(second) != 0 {
		t.Fatal("a failed reload replaced the pair in use")
	}
}
