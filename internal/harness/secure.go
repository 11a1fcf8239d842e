package harness

// Secured test clusters: the production configuration of SPEC §7 (mutual
// TLS, an encrypted gossip, ACLs) on loopback. A Secure holds one
// cluster's CA, a certificate per node, a gossip key and the management
// token every node is started with (-acl-initial-management-token-file),
// and the Auth harness requests present.

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/countd/countd/tlsutil"
)

// Secure is one secured cluster's material, in Dir.
type Secure struct {
	Dir string
	// CA is the CA certificate file (countctl --ca-cert, -tls-ca).
	CA string
	// GossipKey is the base64 gossip key.
	GossipKey string
	// Token is the management token's secret, in TokenFile.
	Token, TokenFile string
	// ClientCert and ClientKey are a client-only certificate, for nodes
	// started with -tls-verify-incoming.
	ClientCert, ClientKey string
	// Auth is what harness requests to the cluster present.
	Auth *Auth

	mu    sync.Mutex
	certs map[string][2]string // node ID → certificate, key
}

// NewSecure creates a CA, a gossip key and a management token in dir.
func NewSecure(dir string) (*Secure, error) {
	ca, _, err := tlsutil.CreateCA(dir, 0)
	if err != nil {
		return nil, err
	}
	var key, token [32]byte
	_, _ = rand.Read(key[:])
	_, _ = rand.Read(token[:])
	s := &Secure{Dir: dir, CA: ca, GossipKey: base64.StdEncoding.EncodeToString(key[:]),
		Token: base64.RawURLEncoding.EncodeToString(token[:]), TokenFile: filepath.Join(dir, "management.token"),
		certs: map[string][2]string{}}
	if err := os.WriteFile(s.TokenFile, []byte(s.Token+"\n"), 0o600); err != nil {
		return nil, err
	}
	if s.ClientCert, s.ClientKey, err = tlsutil.CreateCert(dir, ca, filepath.Join(dir, tlsutil.CAKeyFile),
		tlsutil.CertRequest{Name: "harness-client", ClientOnly: true}); err != nil {
		return nil, err
	}
	tc, err := tlsutil.ClientFiles{CA: ca, Cert: s.ClientCert, Key: s.ClientKey}.Config()
	if err != nil {
		return nil, err
	}
	s.Auth = &Auth{Token: s.Token, TLS: tc}
	return s, nil
}

// Cert returns node id's certificate and key files, issuing them on first
// use, valid for loopback and the given IPs.
func (s *Secure) Cert(id string, ips ...net.IP) (cert, key string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.certs[id]; ok {
		return c[0], c[1], nil
	}
	cert, key, err = tlsutil.CreateCert(s.Dir, s.CA, filepath.Join(s.Dir, tlsutil.CAKeyFile), tlsutil.CertRequest{Name: id, IPs: ips})
	if err != nil {
		return "", "", fmt.Errorf("certificate for %s: %w", id, err)
	}
	s.certs[id] = [2]string{cert, key}
	return cert, key, nil
}

// NodeFlags are the countd flags of node id, reached at ips, in the
// secured cluster.
func (s *Secure) NodeFlags(id string, ips ...net.IP) ([]string, error) {
	cert, key, err := s.Cert(id, ips...)
	if err != nil {
		return nil, err
	}
	return []string{"-tls-ca", s.CA, "-tls-cert", cert, "-tls-key", key, "-gossip-key", s.GossipKey,
		"-acl", "-acl-initial-management-token-file", s.TokenFile}, nil
}

// CountctlFlags are the countctl flags that reach the cluster as its
// management token.
func (s *Secure) CountctlFlags() []string {
	return []string{"--ca-cert", s.CA, "--client-cert", s.ClientCert, "--client-key", s.ClientKey, "--token", s.Token}
}

// ClientTLS is a TLS configuration trusting the cluster's CA.
func (s *Secure) ClientTLS() *tls.Config { return s.Auth.TLS.Clone() }
