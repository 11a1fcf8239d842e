package cluster

// The Raft transport's stream layer: plain TCP, or mutual TLS when the node
// has a certificate. With TLS, every connection in either direction is
// authenticated against the cluster's CA and must present a node
// certificate (tlsutil.PeerListenerConfig), so nobody without one can send
// a single Raft RPC — not an append, not a vote request.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/countd/countd/tlsutil"
)

// peerHandshakeTimeout bounds a TLS handshake on a Raft connection, so a
// peer that connects and says nothing does not hold a goroutine forever.
const peerHandshakeTimeout = 10 * time.Second

// PeerTLS is a node's TLS material for the Raft transport.
type PeerTLS struct {
	// KeyPair is the node's certificate and key (reloadable).
	KeyPair *tlsutil.KeyPair
	// CA is the pool the peers' certificates are verified against.
	CA *x509.CertPool
}

// tlsStreamLayer is a raft.StreamLayer over mutual TLS.
type tlsStreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	peer      PeerTLS
	// accept is the listening side's configuration, built once: it reads
	// the current key pair on every handshake, so reloads still apply.
	accept *tls.Config
}

// newTLSStreamLayer listens on bind; advertise, when not nil, is the
// address given to the other nodes.
func newTLSStreamLayer(bind string, advertise net.Addr, peer PeerTLS) (*tlsStreamLayer, error) {
	if peer.KeyPair == nil || peer.CA == nil {
		return nil, errors.New("raft TLS needs a certificate and a CA")
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if tcp, ok := advertise.(*net.TCPAddr); !ok || tcp.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, fmt.Errorf("raft address %s cannot be advertised to other nodes; give a specific IP", advertise)
	}
	return &tlsStreamLayer{ln: ln, advertise: advertise, peer: peer, accept: tlsutil.PeerListenerConfig(peer.KeyPair, peer.CA)}, nil
}

// Accept implements net.Listener. The handshake happens on the
// connection's first read or write, in Raft's per-connection goroutine, so
// a slow peer never holds up the accept loop.
func (l *tlsStreamLayer) Accept() (net.Conn, error) {
	c, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: tls.Server(c, l.accept)}, nil
}

// Close implements net.Listener.
func (l *tlsStreamLayer) Close() error { return l.ln.Close() }

// Addr implements net.Listener: the advertised address.
func (l *tlsStreamLayer) Addr() net.Addr { return l.advertise }

// Dial implements raft.StreamLayer: the peer must present a node
// certificate of the CA valid for the host it is dialled at.
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, fmt.Errorf("raft address %q: %w", address, err)
	}
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", string(address), tlsutil.PeerDialerConfig(l.peer.KeyPair, l.peer.CA, host))
	if err != nil {
		return nil, fmt.Errorf("raft TLS to %s: %w", address, err)
	}
	return c, nil
}

// handshakeConn completes the server handshake, within
// peerHandshakeTimeout, before the first read or write.
type handshakeConn struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *handshakeConn) handshake() error {
	c.once.Do(func() {
		_ = c.Conn.SetDeadline(time.Now().Add(peerHandshakeTimeout))
		c.err = c.Conn.Handshake()
		_ = c.Conn.SetDeadline(time.Time{})
	})
	return c.err
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *handshakeConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
