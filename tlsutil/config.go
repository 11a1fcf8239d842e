package tlsutil

// The tls.Configs countd uses. Certificates are read through a KeyPair, so
// a SIGHUP can swap in renewed files without a restart: every new handshake
// uses the current pair, established connections keep theirs.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
)

// minVersion is TLS 1.2: every Go client and redis-cli speaks it, and
// nothing older is safe.
const minVersion = tls.VersionTLS12

// KeyPair is a certificate and key loaded from files, reloadable.
type KeyPair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// LoadKeyPair reads certFile and keyFile (PEM).
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	kp := &KeyPair{certFile: certFile, keyFile: keyFile}
	if err := kp.Reload(); err != nil {
		return nil, err
	}
	return kp, nil
}

// Reload reads the files again. On error the pair in use is kept, so a
// half-written renewal never takes a node down.
func (kp *KeyPair) Reload() error {
	c, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return fmt.Errorf("load certificate %s and key %s: %w", kp.certFile, kp.keyFile, err)
	}
	if c.Leaf == nil && len(c.Certificate) > 0 {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return fmt.Errorf("parse certificate %s: %w", kp.certFile, err)
		}
	}
	kp.cur.Store(&c)
	return nil
}

// Certificate is the pair in use.
func (kp *KeyPair) Certificate() *tls.Certificate { return kp.cur.Load() }

func (kp *KeyPair) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return kp.cur.Load(), nil
}

func (kp *KeyPair) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return kp.cur.Load(), nil
}

// LoadCAPool reads the CA certificates in a PEM file.
func LoadCAPool(caFile string) (*x509.CertPool, error) {
	certs, err := readCerts(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// ServerConfig is for the HTTP and RESP listeners: the node's certificate,
// and with verifyIncoming, a client certificate signed by the CA required
// of every client.
func ServerConfig(kp *KeyPair, ca *x509.CertPool, verifyIncoming bool) *tls.Config {
	c := &tls.Config{MinVersion: minVersion, GetCertificate: kp.getCertificate}
	if verifyIncoming {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = ca
	}
	return c
}

// ClientConfig is for a node's own HTTP requests to other nodes (forwarded
// requests, redirects it follows): it trusts only the CA and presents the
// node's certificate, which -tls-verify-incoming asks for.
func ClientConfig(kp *KeyPair, ca *x509.CertPool) *tls.Config {
	return &tls.Config{MinVersion: minVersion, RootCAs: ca, GetClientCertificate: kp.getClientCertificate}
}

// PeerListenerConfig is the accepting side of the Raft transport: mutual
// TLS, and the peer's certificate must be a node certificate (valid for
// server authentication too), so a client-only certificate issued to an
// application cannot speak Raft.
func PeerListenerConfig(kp *KeyPair, ca *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:       minVersion,
		GetCertificate:   kp.getCertificate,
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        ca,
		VerifyConnection: requireNodeCertificate,
	}
}

// PeerDialerConfig is the dialling side of the Raft transport: the peer is
// verified against the CA for the host it was dialled at, and this node
// presents its own certificate.
func PeerDialerConfig(kp *KeyPair, ca *x509.CertPool, host string) *tls.Config {
	return &tls.Config{
		MinVersion:           minVersion,
		RootCAs:              ca,
		ServerName:           host,
		GetClientCertificate: kp.getClientCertificate,
		VerifyConnection:     requireNodeCertificate,
	}
}

// errNotNodeCertificate is returned when a Raft peer presents a
// certificate not valid for server authentication.
var errNotNodeCertificate = errors.New("the peer's certificate is not a node certificate (it lacks server authentication)")

func requireNodeCertificate(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the peer presented no certificate")
	}
	if !slices.Contains(cs.PeerCertificates[0].ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return errNotNodeCertificate
	}
	return nil
}

// ClientFiles is the TLS material of a client (countctl, an application):
// the CA to trust, and optionally a client certificate and key for a
// cluster that verifies incoming connections.
type ClientFiles struct {
	CA, Cert, Key string
}

// Config builds the client's tls.Config; nil with no CA.
func (f ClientFiles) Config() (*tls.Config, error) {
	if f.CA == "" && f.Cert == "" && f.Key == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: minVersion}
	if f.CA != "" {
		pool, err := LoadCAPool(f.CA)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("a client certificate needs both --client-cert and --client-key")
	}
	if f.Cert != "" {
		kp, err := LoadKeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, err
		}
		c.GetClientCertificate = kp.getClientCertificate
	}
	return c, nil
}
