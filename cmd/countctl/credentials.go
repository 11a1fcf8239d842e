package main

// How countctl presents itself to a secured cluster: an ACL token (--token,
// --token-file) and TLS (--ca-cert, and --client-cert with --client-key
// for a cluster that verifies clients), each also from its COUNTD_*
// variable.

import (
	"fmt"
	"os"
	"strings"

	"github.com/countd/countd/client"
	"github.com/countd/countd/tlsutil"
)

func (a *app) credentials(cfg *client.Config) error {
	token := a.token
	if token == "" && a.tokenFile == "" {
		token = a.getenv("COUNTD_TOKEN")
	}
	if token != "" && a.tokenFile != "" {
		return usagef("give --token or --token-file, not both")
	}
	cfg.Token = token
	if a.tokenFile != "" {
		b, err := os.ReadFile(a.tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		cfg.Token = strings.TrimSpace(string(b))
		if cfg.Token == "" {
			return fmt.Errorf("--token-file %s is empty", a.tokenFile)
		}
	}
	if (a.clientCert == "") != (a.clientKey == "") {
		return usagef("a client certificate needs both --client-cert and --client-key")
	}
	tc, err := tlsutil.ClientFiles{CA: a.caCert, Cert: a.clientCert, Key: a.clientKey}.Config()
	if err != nil {
		return err
	}
	cfg.TLS = tc
	return nil
}
