package main

import (
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countd/countd/tlsutil"
)

func parse(t *testing.T, args ...string) (*options, error) {
	t.Helper()
	return parseOptions(args, func(string) string { return "" }, io.Discard)
}

func TestSecurityFlagsThatCannotMeanAnything(t *testing.T) {
	key16 := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-tls-ca", "ca.pem"}, "all three"},
		{[]string{"-tls-cert", "n1.pem", "-tls-key", "n1-key.pem"}, "all three"},
		{[]string{"-tls-verify-incoming"}, "needs -tls-ca"},
		{[]string{"-gossip-key", key16, "-gossip-key-file", "k"}, "not both"},
		{[]string{"-gossip-key", "not base64!"}, "not base64"},
		{[]string{"-gossip-key", base64.StdEncoding.EncodeToString(make([]byte, 20))}, "20 bytes"},
		{[]string{"-gossip-key", key16 + ",,"}, ""},
	} {
		_, err := parse(t, tc.args...)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one saying %q", tc.args, err, tc.want)
		}
	}
}

func TestLoadSecurity(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, err := tlsutil.CreateCA(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := tlsutil.CreateCert(dir, ca, caKey, tlsutil.CertRequest{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	k1 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	k2 := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210"))
	keyFile := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(keyFile, []byte(k1+"\n"+k2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parse(t, "-tls-ca", ca, "-tls-cert", cert, "-tls-key", key, "-tls-verify-incoming", "-gossip-key-file", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := o.loadSecurity()
	if err != nil {
		t.Fatal(err)
	}
	if !sec.tls() || !sec.verifyIncoming || len(sec.gossipKeys) != 2 || string(sec.gossipKeys[1]) != "fedcba9876543210" {
		t.Fatalf("security = %+v", sec)
	}
	o.tlsKey = filepath.Join(dir, "missing-key.pem")
	if _, err := o.loadSecurity(); err == nil {
		t.Fatal("a missing key file was accepted")
	}
}

func TestSecureByDefaultOffLoopback(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tls := []string{"-tls-ca", "ca.pem", "-tls-cert", "n1.pem", "-tls-key", "n1-key.pem"}
	all := append([]string{"-gossip-key", key, "-acl"}, tls...)
	for _, tc := range []struct {
		args []string
		want string // "" = starts
	}{
		{nil, ""}, // the loopback defaults
		{[]string{"-http-addr", "localhost:8080", "-raft-addr", "[::1]:8300", "-gossip-addr", "127.0.0.2:8301"}, ""},
		{[]string{"-http-addr", "0.0.0.0:8080"}, "-http-addr 0.0.0.0:8080 is not loopback, so countd needs TLS (-tls-ca, -tls-cert, -tls-key), a gossip key (-gossip-key or -gossip-key-file), -acl"},
		{[]string{"-http-addr", ":8080"}, "-http-addr :8080 is not loopback"},
		{[]string{"-raft-addr", "countd-1.invalid:8300", "-gossip-addr", "[::]:8301"}, "-raft-addr countd-1.invalid:8300 and -gossip-addr [::]:8301 is not loopback"},
		{append([]string{"-http-addr", "0.0.0.0:8080", "-acl"}, tls...), "needs a gossip key (-gossip-key or -gossip-key-file) (or -insecure"},
		{append([]string{"-http-addr", "0.0.0.0:8080"}, all...), ""},
		{[]string{"-http-addr", "0.0.0.0:8080", "-insecure"}, ""},
		{[]string{"-http-addr", "0.0.0.0:8080", "-dev"}, ""},
		{[]string{"-acl-initial-management-token-file", "t"}, "needs -acl"},
	} {
		_, err := parse(t, tc.args...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one saying %q", tc.args, err, tc.want)
		}
	}
}
