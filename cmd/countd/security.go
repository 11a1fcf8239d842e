package main

// TLS and gossip encryption options (SPEC §7): what the flags say, checked
// for consistency at parse time (usage errors), and the files they name,
// loaded at start (runtime errors).

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/hashicorp/memberlist"

	"github.com/countd/countd/fsm"
	"github.com/countd/countd/tlsutil"
)

// security is what the TLS and gossip options resolve to.
type security struct {
	// keyPair and ca are set with TLS.
	keyPair        *tlsutil.KeyPair
	ca             *x509.CertPool
	verifyIncoming bool
	gossipKeys     [][]byte
	// initialToken hashes -acl-initial-management-token-file's secret.
	initialToken fsm.SecretHash
}

func (s *security) tls() bool { return s.keyPair != nil }

// peerClientTLS is how this node reaches other nodes' HTTP APIs (requests
// it forwards to the leader); nil without TLS.
func (s *security) peerClientTLS() *tls.Config {
	if !s.tls() {
		return nil
	}
	return tlsutil.ClientConfig(s.keyPair, s.ca)
}

// checkSecurityFlags refuses combinations that cannot mean anything.
func (o *options) checkSecurityFlags() error {
	set := 0
	for _, v := range []string{o.tlsCA, o.tlsCert, o.tlsKey} {
		if v != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		return errors.New("TLS needs all three of -tls-ca, -tls-cert and -tls-key")
	}
	if o.tlsVerifyIncoming && set == 0 {
		return errors.New("-tls-verify-incoming needs -tls-ca, -tls-cert and -tls-key")
	}
	if o.gossipKey != "" && o.gossipKeyFile != "" {
		return errors.New("give -gossip-key or -gossip-key-file, not both")
	}
	if o.gossipKey != "" {
		var err error
		if o.gossipKeys, err = parseGossipKeys(o.gossipKey); err != nil {
			return fmt.Errorf("-gossip-key: %w", err)
		}
	}
	if o.aclInitialToken != "" && !o.acl {
		return errors.New("-acl-initial-management-token-file needs -acl")
	}
	return o.checkSecureByDefault()
}

// checkSecureByDefault refuses an address off loopback without all three
// layers of SPEC §7, unless -insecure says the operator knows.
func (o *options) checkSecureByDefault() error {
	if o.insecure || o.dev {
		return nil
	}
	var exposed []string
	for _, a := range []struct{ flag, addr string }{{"-http-addr", o.httpAddr}, {"-raft-addr", o.raftAddr}, {"-gossip-addr", o.gossipAddr}, {"-resp-addr", o.respAddr}} {
		if a.addr != "" && !isLoopback(a.addr) { // -resp-addr is off when empty
			exposed = append(exposed, a.flag+" "+a.addr)
		}
	}
	if len(exposed) == 0 {
		return nil
	}
	var missing []string
	if o.tlsCert == "" {
		missing = append(missing, "TLS (-tls-ca, -tls-cert, -tls-key)")
	}
	if o.gossipKey == "" && o.gossipKeyFile == "" {
		missing = append(missing, "a gossip key (-gossip-key or -gossip-key-file)")
	}
	if !o.acl {
		missing = append(missing, "-acl")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s is not loopback, so countd needs %s (or -insecure to run without them)",
		strings.Join(exposed, " and "), strings.Join(missing, ", "))
}

// isLoopback reports whether a host:port binds only loopback: the host is
// "localhost" or a loopback IP. Any other name is taken as exposed; it is
// never looked up.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadSecurity reads the files the options name.
func (o *options) loadSecurity() (*security, error) {
	s := &security{verifyIncoming: o.tlsVerifyIncoming}
	if o.tlsCert != "" {
		kp, err := tlsutil.LoadKeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, err
		}
		ca, err := tlsutil.LoadCAPool(o.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca: %w", err)
		}
		s.keyPair, s.ca = kp, ca
	}
	s.gossipKeys = o.gossipKeys // -gossip-key, parsed with the flags
	if o.gossipKeyFile != "" {
		b, err := os.ReadFile(o.gossipKeyFile)
		if err != nil {
			return nil, fmt.Errorf("-gossip-key-file: %w", err)
		}
		if s.gossipKeys, err = parseGossipKeys(string(b)); err != nil {
			return nil, fmt.Errorf("-gossip-key-file %s: %w", o.gossipKeyFile, err)
		}
	}
	if o.aclInitialToken != "" {
		b, err := os.ReadFile(o.aclInitialToken)
		if err != nil {
			return nil, fmt.Errorf("-acl-initial-management-token-file: %w", err)
		}
		secret := strings.TrimSpace(string(b))
		if len(secret) < 16 {
			return nil, fmt.Errorf("-acl-initial-management-token-file: the secret must be at least 16 characters, got %d", len(secret))
		}
		s.initialToken = fsm.HashSecret(secret)
	}
	return s, nil
}

// parseGossipKeys reads a comma- or whitespace-separated list of base64
// keys.
func parseGossipKeys(v string) ([][]byte, error) {
	var keys [][]byte
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
		k, err := base64.StdEncoding.DecodeString(f)
		if err != nil {
			return nil, fmt.Errorf("key %d is not base64: %w", len(keys)+1, err)
		}
		if err := memberlist.ValidateKey(k); err != nil {
			return nil, fmt.Errorf("key %d is %d bytes: %w (countctl gossip keygen makes one)", len(keys)+1, len(k), err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key given")
	}
	return keys, nil
}
