package cluster

// Membership notices: "I am leaving" (from the node that leaves, to every
// member) and "you were removed" (from the leader, to the node that left).
// They travel over memberlist's TCP channel, which tells the receiver
// nothing about who sent a message, so with TLS on each notice is signed
// with the sender's node key and carries its certificate: the receiver
// checks the certificate against the cluster's CA, that it names the
// sender, and the signature. A leave is honoured only from the node that
// leaves. Without TLS there is no node identity to check; such clusters
// are loopback-only, or trust every holder of the gossip key.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// noticeMaxAge bounds how old (or how far ahead, for a sender whose clock
// runs fast) a signed notice may be.
const noticeMaxAge = 5 * time.Minute

// notice is one membership notice.
type notice struct {
	Kind    byte   `json:"k"` // leavingMsg or removedMsg
	Cluster string `json:"c"`
	// Node is the node leaving, or the node removed.
	Node string `json:"n"`
	From string `json:"f"`
	At   int64  `json:"t"` // Unix nanoseconds, the sender's clock
	// Cert is the sender's certificate (DER) and Sig its signature over
	// the other fields; both empty without TLS.
	Cert []byte `json:"x,omitempty"`
	Sig  []byte `json:"s,omitempty"`
}

// signedBytes is what the signature covers: every field but Sig.
func (nt notice) signedBytes() []byte {
	nt.Sig = nil
	b, _ := json.Marshal(nt) // plain fields: cannot fail
	return append([]byte("countd membership notice\x00"), b...)
}

// makeNotice builds a notice from this node, signed when peer is set.
func makeNotice(kind byte, cluster, node, from string, peer *PeerTLS, now time.Time) ([]byte, error) {
	nt := notice{Kind: kind, Cluster: cluster, Node: node, From: from, At: now.UnixNano()}
	if peer != nil {
		cert := peer.KeyPair.Certificate()
		signer, ok := cert.PrivateKey.(crypto.Signer)
		if !ok || len(cert.Certificate) == 0 {
			return nil, errors.New("the node's TLS key cannot sign")
		}
		nt.Cert = cert.Certificate[0]
		// Ed25519 signs the message itself; ECDSA and RSA its SHA-256.
		var opts crypto.SignerOpts = crypto.Hash(0)
		msg := nt.signedBytes()
		if _, ed := signer.Public().(ed25519.PublicKey); !ed {
			digest := sha256.Sum256(msg)
			opts, msg = crypto.SHA256, digest[:]
		}
		sig, err := signer.Sign(rand.Reader, msg, opts)
		if err != nil {
			return nil, fmt.Errorf("sign membership notice: %w", err)
		}
		nt.Sig = sig
	}
	b, err := json.Marshal(nt)
	if err != nil {
		return nil, err
	}
	return append([]byte{kind}, b...), nil
}

// readNotice decodes and, when peer is set, authenticates a notice. It
// returns an error saying why a notice is not to be acted on.
func readNotice(b []byte, cluster string, peer *PeerTLS, now time.Time) (notice, error) {
	var nt notice
	if len(b) < 2 {
		return nt, errors.New("empty notice")
	}
	if err := json.Unmarshal(b[1:], &nt); err != nil {
		return nt, fmt.Errorf("unreadable notice: %w", err)
	}
	switch {
	case nt.Kind != b[0]:
		return nt, errors.New("notice kind does not match its tag")
	case nt.Cluster != cluster:
		return nt, fmt.Errorf("notice for cluster %q", nt.Cluster)
	case nt.Kind == leavingMsg && nt.From != nt.Node:
		return nt, fmt.Errorf("leave notice for %s sent by %s: only a node itself may announce its leave", nt.Node, nt.From)
	}
	if peer == nil {
		return nt, nil
	}
	if age := now.Sub(time.Unix(0, nt.At)); age > noticeMaxAge || age < -noticeMaxAge {
		return nt, fmt.Errorf("notice is %v old", age.Round(time.Second))
	}
	cert, err := x509.ParseCertificate(nt.Cert)
	if err != nil {
		return nt, fmt.Errorf("notice without a readable certificate: %w", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: peer.CA, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, CurrentTime: now}); err != nil {
		return nt, fmt.Errorf("notice certificate not a node certificate of the cluster's CA: %w", err)
	}
	if !certNames(cert, nt.From) {
		return nt, fmt.Errorf("notice from %s signed with a certificate for %s", nt.From, cert.Subject.CommonName)
	}
	if err := verifySignature(cert.PublicKey, nt.signedBytes(), nt.Sig); err != nil {
		return nt, fmt.Errorf("notice from %s: %w", nt.From, err)
	}
	return nt, nil
}

// certNames reports whether the certificate is issued to node id: its
// common name or one of its DNS names.
func certNames(cert *x509.Certificate, id string) bool {
	return cert.Subject.CommonName == id || slices.Contains(cert.DNSNames, id)
}

func verifySignature(pub any, msg, sig []byte) error {
	digest := sha256.Sum256(msg)
	ok := false
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(pub, digest[:], sig)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
	case ed25519.PublicKey:
		ok = ed25519.Verify(pub, msg, sig)
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	if !ok {
		return errors.New("bad signature")
	}
	return nil
}
