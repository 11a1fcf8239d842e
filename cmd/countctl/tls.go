package main

// Offline commands that make a secure cluster's material: its CA, node and
// client certificates (tls), and a gossip encryption key (gossip). They
// talk to no node.

import (
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/countd/countd/tlsutil"
)

func tlsCommand(a *app) *cobra.Command {
	return group("tls", "Create a cluster's certificate authority and certificates", tlsCA(a), tlsCert(a))
}

func tlsCA(a *app) *cobra.Command {
	var dir string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a certificate authority (countd-ca.pem, countd-ca-key.pem) in --dir",
		Long: `Create a certificate authority for one cluster: countd-ca.pem (give it to
every node as -tls-ca and to clients as --ca-cert) and countd-ca-key.pem
(keep it offline; it signs node and client certificates). Existing files
are never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cert, key, err := tlsutil.CreateCA(dir, 0)
			if err != nil {
				return err
			}
			return a.printLine(map[string]string{"cert": cert, "key": key}, fmt.Sprintf("created %s and %s", cert, key))
		},
	}
	create.Flags().StringVar(&dir, "dir", ".", "directory to write into (created 0700 if missing)")
	return group("ca", "Create a certificate authority", create)
}

func tlsCert(a *app) *cobra.Command {
	var (
		dir, name, ca, caKey string
		ips, dnsNames        []string
		clientOnly           bool
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a node certificate (NAME.pem, NAME-key.pem) signed by the CA in --dir",
		Long: `Create a certificate signed by the CA in --dir (or --ca and --ca-key).

A node certificate (the default) is valid for serving and as a client, and
names the node: --name must be the node's -node-id. Give every address
other nodes and clients reach it by with --ip and --dns; "localhost" and
127.0.0.1 are always included. --client makes a certificate for a client
only (countctl, an application): it cannot serve, and no node accepts it
for Raft. Existing files are never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if name == "" {
				return usagef("--name is required (the node ID, or a client's name)")
			}
			req := tlsutil.CertRequest{Name: name, DNSNames: dnsNames, ClientOnly: clientOnly}
			for _, s := range ips {
				ip := net.ParseIP(s)
				if ip == nil {
					return usagef("--ip %q is not an IP address", s)
				}
				req.IPs = append(req.IPs, ip)
			}
			if ca == "" {
				ca = filepath.Join(dir, tlsutil.CAFile)
			}
			if caKey == "" {
				caKey = filepath.Join(dir, tlsutil.CAKeyFile)
			}
			cert, key, err := tlsutil.CreateCert(dir, ca, caKey, req)
			if err != nil {
				return err
			}
			return a.printLine(map[string]string{"cert": cert, "key": key}, fmt.Sprintf("created %s and %s", cert, key))
		},
	}
	f := create.Flags()
	f.StringVar(&dir, "dir", ".", "directory holding the CA and receiving the certificate")
	f.StringVar(&name, "name", "", "node ID (or client name): the certificate's name and file name")
	f.StringSliceVar(&ips, "ip", nil, "IP address the certificate is valid for (repeatable)")
	f.StringSliceVar(&dnsNames, "dns", nil, "DNS name the certificate is valid for (repeatable)")
	f.BoolVar(&clientOnly, "client", false, "a client-only certificate")
	f.StringVar(&ca, "ca", "", "CA certificate (default DIR/"+tlsutil.CAFile+")")
	f.StringVar(&caKey, "ca-key", "", "CA key (default DIR/"+tlsutil.CAKeyFile+")")
	return group("cert", "Create certificates signed by the cluster's CA", create)
}

func gossipCommand(a *app) *cobra.Command {
	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "Print a new 32-byte gossip encryption key (base64) for -gossip-key",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var k [32]byte
			if _, err := crand.Read(k[:]); err != nil {
				return err
			}
			key := base64.StdEncoding.EncodeToString(k[:])
			return a.printLine(map[string]string{"key": key}, key)
		},
	}
	return group("gossip", "Gossip encryption keys", keygen)
}
