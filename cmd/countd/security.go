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
	"os"
	"strings"

	"github.com/hashicorp/memberlist"

	"github.com/countd/countd/tlsutil"
)

// security is what the TLS and gossip options resolve to.
type security struct {
	// keyPair and ca are set with TLS.
	keyPair        *tlsutil.KeyPair
	ca             *x509.CertPool
	verifyIncoming bool
	gossipKeys     [][]byte
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
		if _, err := parseGossipKeys(o.gossipKey); err != nil {
			return fmt.Errorf("-gossip-key: %w", err)
		}
	}
	return nil
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
	keys := o.gossipKey
	if o.gossipKeyFile != "" {
		b, err := os.ReadFile(o.gossipKeyFile)
		if err != nil {
			return nil, fmt.Errorf("-gossip-key-file: %w", err)
		}
		keys = string(b)
	}
	if keys != "" {
		var err error
		if s.gossipKeys, err = parseGossipKeys(keys); err != nil {
			return nil, fmt.Errorf("gossip key: %w", err)
		}
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
