// Package tlsutil creates a cluster's certificate authority and its
// certificates, and builds the tls.Configs that countd's servers, its Raft
// peers and its clients use. It is a leaf: any room may import it.
//
// One CA per cluster. Node certificates are valid for both server and
// client authentication, because a node is both when it talks Raft;
// client-only certificates (countctl, applications) cannot serve and cannot
// speak Raft (see PeerConfig).
package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names CreateCA writes.
const (
	CAFile    = "countd-ca.pem"
	CAKeyFile = "countd-ca-key.pem"
)

// Default validities: long enough not to expire under a running cluster by
// surprise, short enough that a leaked node key does not last forever.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 2 * 365 * 24 * time.Hour
)

// CreateCA writes a new certificate authority to dir (created 0700 if
// missing) as CAFile and CAKeyFile, and returns their paths. It refuses to
// overwrite either file: replacing a CA by accident would cut every node
// off from the others.
func CreateCA(dir string, validity time.Duration) (certPath, keyPath string, err error) {
	key, tmpl, err := newTemplate(validity, DefaultCAValidity)
	if err != nil {
		return "", "", err
	}
	tmpl.Subject = pkix.Name{CommonName: "countd CA " + tmpl.SerialNumber.Text(16)[:8], Organization: []string{"countd"}}
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid, tmpl.IsCA, tmpl.MaxPathLenZero = true, true, true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("create CA certificate: %w", err)
	}
	return writePair(dir, CAFile, CAKeyFile, der, key)
}

// CertRequest describes a certificate to issue.
type CertRequest struct {
	// Name is the file name stem (Name.pem, Name-key.pem) and the common
	// name; it is also a DNS name in the certificate.
	Name string
	// IPs and DNSNames are the addresses the certificate is valid for, in
	// addition to Name, "localhost" and 127.0.0.1 (which every node cert
	// carries, so loopback tools and tests can reach any node).
	IPs      []net.IP
	DNSNames []string
	// ClientOnly issues a certificate for client authentication only: it
	// cannot serve HTTP or Raft, and no node accepts it as a peer.
	ClientOnly bool
	// Validity defaults to DefaultCertValidity.
	Validity time.Duration
}

// CreateCert issues a certificate signed by the CA in caCertPath and
// caKeyPath, writes it to dir as Name.pem and Name-key.pem (mode 0600),
// and returns their paths. It refuses to overwrite either file.
func CreateCert(dir, caCertPath, caKeyPath string, req CertRequest) (certPath, keyPath string, err error) {
	if req.Name == "" || filepath.Base(req.Name) != req.Name || req.Name == "." || req.Name == ".." {
		return "", "", fmt.Errorf("certificate name %q must be a plain file name", req.Name)
	}
	ca, caKey, err := loadCA(caCertPath, caKeyPath)
	if err != nil {
		return "", "", err
	}
	key, tmpl, err := newTemplate(req.Validity, DefaultCertValidity)
	if err != nil {
		return "", "", err
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter // a certificate outliving its CA would fail anyway
	}
	tmpl.Subject = pkix.Name{CommonName: req.Name, Organization: []string{"countd"}}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if !req.ClientOnly {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.DNSNames = dedupe(append([]string{req.Name, "localhost"}, req.DNSNames...))
		tmpl.IPAddresses = dedupeIPs(append([]net.IP{net.IPv4(127, 0, 0, 1)}, req.IPs...))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", fmt.Errorf("sign certificate %s: %w", req.Name, err)
	}
	return writePair(dir, req.Name+".pem", req.Name+"-key.pem", der, key)
}

// newTemplate starts a certificate: a new P-256 key, a random 128-bit
// serial number, and validity from a minute ago (for clocks a little
// behind) for validity, or def when that is not positive.
func newTemplate(validity, def time.Duration) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	if validity <= 0 {
		validity = def
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("generate serial number: %w", err)
	}
	now := time.Now()
	return key, &x509.Certificate{SerialNumber: serial, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(validity)}, nil
}

func loadCA(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certs, err := readCerts(certPath)
	if err != nil {
		return nil, nil, err
	}
	ca := certs[0]
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	b, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read CA key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, nil, fmt.Errorf("%s holds no PEM block", keyPath)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA key %s: %w", keyPath, err)
	}
	if !key.PublicKey.Equal(ca.PublicKey) {
		return nil, nil, fmt.Errorf("%s is not the key of %s", keyPath, certPath)
	}
	return ca, key, nil
}

// readCerts parses every certificate in a PEM file.
func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate in %s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}

// writePair writes a certificate (0644) and its key (0600) without
// overwriting anything.
func writePair(dir, certName, keyName string, der []byte, key *ecdsa.PrivateKey) (certPath, keyPath string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("create %s: %w", dir, err)
	}
	certPath, keyPath = filepath.Join(dir, certName), filepath.Join(dir, keyName)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s already exists; remove it or choose another --dir", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", "", err
		}
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("encode key: %w", err)
	}
	if err := writeNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		_ = os.Remove(keyPath)
		return "", "", err
	}
	return certPath, keyPath, nil
}

// writeNew creates path exclusively, so a concurrent writer cannot be
// overwritten either, and syncs it.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func dedupe(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func dedupeIPs(in []net.IP) []net.IP {
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, ip := range in {
		if ip != nil && !seen[ip.String()] {
			seen[ip.String()] = true
			out = append(out, ip)
		}
	}
	return out
}
