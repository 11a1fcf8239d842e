package cluster

import (
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestNoticesWithoutTLS(t *testing.T) {
	now := time.Now()
	msg, err := makeNotice(leavingMsg, "prod", "n1", "n1", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if nt, err := readNotice(msg, "prod", nil, now); err != nil || nt.Node != "n1" {
		t.Fatalf("own leave: %+v, %v", nt, err)
	}
	if _, err := readNotice(msg, "staging", nil, now); err == nil {
		t.Fatal("another cluster's notice was accepted")
	}
	forged, _ := makeNotice(leavingMsg, "prod", "n2", "n1", nil, now)
	if _, err := readNotice(forged, "prod", nil, now); err == nil || !strings.Contains(err.Error(), "only a node itself") {
		t.Fatalf("n1 announcing n2's leave: %v", err)
	}
	for _, b := range [][]byte{nil, {leavingMsg}, append([]byte{leavingMsg}, "n1"...), append([]byte{removedMsg}, msg[1:]...)} {
		if _, err := readNotice(b, "prod", nil, now); err == nil {
			t.Errorf("%q was accepted", b)
		}
	}
}

func TestSignedNotices(t *testing.T) {
	peer, kps := testPKI(t, "n1", "n2", "client")
	other, strangers := testPKI(t, "n1")
	as := func(name string) *PeerTLS { return &PeerTLS{KeyPair: kps[name], CA: peer.CA} }
	now := time.Now()

	own, err := makeNotice(leavingMsg, "prod", "n1", "n1", as("n1"), now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readNotice(own, "prod", &peer, now); err != nil {
		t.Fatalf("n1's own signed leave: %v", err)
	}
	removed, err := makeNotice(removedMsg, "prod", "n1", "n2", as("n2"), now)
	if err != nil {
		t.Fatal(err)
	}
	if nt, err := readNotice(removed, "prod", &peer, now); err != nil || nt.Node != "n1" {
		t.Fatalf("the leader's removal notice: %+v, %v", nt, err)
	}

	tamper := func(b []byte, f func(*notice)) []byte {
		var nt notice
		if err := json.Unmarshal(b[1:], &nt); err != nil {
			t.Fatal(err)
		}
		f(&nt)
		out, _ := json.Marshal(nt)
		return append([]byte{b[0]}, out...)
	}
	unsigned, _ := makeNotice(leavingMsg, "prod", "n1", "n1", nil, now)
	n2AsN1, _ := makeNotice(leavingMsg, "prod", "n1", "n1", as("n2"), now)
	clientAsClient, _ := makeNotice(leavingMsg, "prod", "client", "client", as("client"), now)
	strangerN1, _ := makeNotice(leavingMsg, "prod", "n1", "n1", &PeerTLS{KeyPair: strangers["n1"], CA: other.CA}, now)
	for name, b := range map[string][]byte{
		"unsigned":                          unsigned,
		"n2's key announcing n1's leave":    n2AsN1,
		"a client-only certificate":         clientAsClient,
		"another CA's n1":                   strangerN1,
		"node changed after signing":        tamper(removed, func(nt *notice) { nt.Node = "n2" }),
		"signature of another notice":       tamper(own, func(nt *notice) { nt.Sig = tamperSig(t, removed) }),
		"certificate swapped after signing": tamper(own, func(nt *notice) { nt.Cert = certOf(t, removed) }),
		"ten minutes old":                   mustNotice(t, leavingMsg, "n1", "n1", as("n1"), now.Add(-10*time.Minute)),
	} {
		if _, err := readNotice(b, "prod", &peer, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func mustNotice(t *testing.T, kind byte, node, from string, peer *PeerTLS, at time.Time) []byte {
	t.Helper()
	b, err := makeNotice(kind, "prod", node, from, peer, at)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeNotice(t *testing.T, b []byte) notice {
	t.Helper()
	var nt notice
	if err := json.Unmarshal(b[1:], &nt); err != nil {
		t.Fatal(err)
	}
	return nt
}

func tamperSig(t *testing.T, b []byte) []byte { return decodeNotice(t, b).Sig }
func certOf(t *testing.T, b []byte) []byte    { return decodeNotice(t, b).Cert }

// TestGossipHonoursOnlyAuthenticatedLeaves drives the member table the way
// memberlist does: a forged leave notice, or a leaving flag in gossiped
// metadata, must not turn a dead member into one that left (which the
// leader removes at once, skipping the grace period); the member's own
// signed notice does.
func TestGossipHonoursOnlyAuthenticatedLeaves(t *testing.T) {
	peer, kps := testPKI(t, "n1", "n2", "n3")
	g := &gossip{
		cluster: "prod", name: "n1", peer: &PeerTLS{KeyPair: kps["n1"], CA: peer.CA},
		logger: testQuietLogger(), members: map[string]member{}, stats: map[string]peerStats{},
		leaving: map[string]bool{}, removed: make(chan struct{}), changed: make(chan struct{}, 1),
	}
	die := func(id string, metaLeaving bool) string {
		meta, _ := json.Marshal(memberMeta{Cluster: "prod", Leaving: metaLeaving})
		g.record(memberlistNode(id, meta), statusDead)
		m, _ := g.lookup(id)
		return m.status
	}
	now := time.Now()
	// n3's key forging n2's leave, an unsigned one, and the metadata flag.
	g.NotifyMsg(mustNotice(t, leavingMsg, "n2", "n2", &PeerTLS{KeyPair: kps["n3"], CA: peer.CA}, now))
	g.NotifyMsg(mustNotice(t, leavingMsg, "n2", "n2", nil, now))
	if got := die("n2", true); got != statusDead {
		t.Fatalf("after forged notices and a gossiped leaving flag, n2 is %s, want dead", got)
	}
	// A forged removal notice does not end this node's wait.
	g.NotifyMsg(mustNotice(t, removedMsg, "n1", "n1", nil, now))
	select {
	case <-g.removed:
		t.Fatal("an unsigned removal notice was honoured")
	default:
	}
	// The real ones.
	g.NotifyMsg(mustNotice(t, leavingMsg, "n3", "n3", &PeerTLS{KeyPair: kps["n3"], CA: peer.CA}, now))
	if got := die("n3", false); got != statusLeft {
		t.Fatalf("after its own signed notice, n3 is %s, want left", got)
	}
	g.NotifyMsg(mustNotice(t, removedMsg, "n1", "n2", &PeerTLS{KeyPair: kps["n2"], CA: peer.CA}, now))
	select {
	case <-g.removed:
	default:
		t.Fatal("the leader's signed removal notice was not honoured")
	}
}

func testQuietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func memberlistNode(id string, meta []byte) *memberlist.Node {
	return &memberlist.Node{Name: id, Addr: net.ParseIP("127.0.0.1"), Port: 1, Meta: meta}
}
