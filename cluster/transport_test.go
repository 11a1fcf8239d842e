package cluster

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/countd/countd/tlsutil"
)

// tlsTransport is a Raft network transport over the TLS stream layer.
func tlsTransport(t *testing.T, peer PeerTLS) *raft.NetworkTransport {
	t.Helper()
	sl, err := newTLSStreamLayer("127.0.0.1:0", nil, peer)
	if err != nil {
		t.Fatal(err)
	}
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: sl, MaxPool: 2, Timeout: 2 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{Output: io.Discard}),
	})
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func testPKI(t *testing.T, names ...string) (PeerTLS, map[string]*tlsutil.KeyPair) {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, err := tlsutil.CreateCA(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tlsutil.LoadCAPool(ca)
	if err != nil {
		t.Fatal(err)
	}
	kps := map[string]*tlsutil.KeyPair{}
	for _, name := range names {
		req := tlsutil.CertRequest{Name: name}
		if name == "client" {
			req.ClientOnly = true
		}
		c, k, err := tlsutil.CreateCert(dir, ca, caKey, req)
		if err != nil {
			t.Fatal(err)
		}
		if kps[name], err = tlsutil.LoadKeyPair(c, k); err != nil {
			t.Fatal(err)
		}
	}
	return PeerTLS{CA: pool}, kps
}

// serveAppends answers every RPC the transport receives and counts them.
func serveAppends(tr *raft.NetworkTransport) <-chan raft.RPC {
	got := make(chan raft.RPC, 16)
	go func() {
		for rpc := range tr.Consumer() {
			got <- rpc
			rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: true}, nil)
		}
	}()
	return got
}

func TestRaftTLSRefusesPeersWithoutANodeCertificateOfTheCA(t *testing.T) {
	peer, kps := testPKI(t, "n1", "n2", "client")
	other, strangers := testPKI(t, "n9")
	n1 := tlsTransport(t, PeerTLS{KeyPair: kps["n1"], CA: peer.CA})
	got := serveAppends(n1)
	req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("n2"), Addr: []byte("x")}, Term: 1}

	send := func(from raft.Transport) error {
		var resp raft.AppendEntriesResponse
		return from.AppendEntries("n1", n1.LocalAddr(), req, &resp)
	}
	// A member of the cluster gets through.
	if err := send(tlsTransport(t, PeerTLS{KeyPair: kps["n2"], CA: peer.CA})); err != nil {
		t.Fatalf("n2 → n1 over TLS: %v", err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("n1 never received n2's append")
	}

	plain, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 1, 2*time.Second, hclog.New(&hclog.LoggerOptions{Output: io.Discard}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	for name, from := range map[string]raft.Transport{
		"plain TCP (the forged append of issue 11)": plain,
		"a client-only certificate":                 tlsTransport(t, PeerTLS{KeyPair: kps["client"], CA: peer.CA}),
		"another CA's node":                         tlsTransport(t, PeerTLS{KeyPair: strangers["n9"], CA: other.CA}),
		"another CA's node trusting ours":           tlsTransport(t, PeerTLS{KeyPair: strangers["n9"], CA: peer.CA}),
	} {
		if err := send(from); err == nil {
			t.Errorf("%s: the append was answered", name)
		}
	}
	select {
	case rpc := <-got:
		t.Fatalf("n1 received an RPC from an unauthenticated peer: %#v", rpc.Command)
	default:
	}
}
