package cluster

import (
	"bytes"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"
)

func TestSortedMembersOrdersByID(t *testing.T) {
	table := map[string]member{}
	for _, id := range []string{"n3", "n10", "a", "n1", "z", "n2"} {
		table[id] = member{id: id}
	}
	var got []string
	for _, m := range sortedMembers(table) {
		got = append(got, m.id)
	}
	want := []string{"a", "n1", "n10", "n2", "n3", "z"}
	if !slices.Equal(got, want) {
		t.Fatalf("sortedMembers = %v, want %v", got, want)
	}
}

func TestSuspectsOf(t *testing.T) {
	const probe = 500 * time.Millisecond
	now := time.Unix(1_000_000, 0)
	at := func(ago time.Duration) time.Time { return now.Add(-ago) }
	// Three members besides self: the limit is (2*3+1) probe intervals.
	limit := 7 * probe
	members := map[string]member{
		"self":    {id: "self", status: statusAlive, since: at(time.Hour)},
		"acked":   {id: "acked", status: statusAlive, since: at(time.Hour)},
		"silent":  {id: "silent", status: statusAlive, since: at(time.Hour)},
		"new":     {id: "new", status: statusAlive, since: at(limit - time.Millisecond)},
		"dead":    {id: "dead", status: statusDead, since: at(time.Hour)},
		"stalest": {id: "stalest", status: statusLeft, since: at(time.Hour)},
	}
	stats := map[string]peerStats{
		"acked":  {at: at(limit - time.Millisecond)},
		"silent": {at: at(limit + time.Millisecond)},
	}
	got := suspectsOf(members, stats, "self", probe, now)
	want := map[string]bool{"silent": true}
	if !maps.Equal(got, want) {
		t.Fatalf("suspects = %v, want %v", got, want)
	}
	// A member that never acked counts from when it became alive.
	delete(stats, "silent")
	members["new"] = member{id: "new", status: statusAlive, since: at(limit + time.Millisecond)}
	got = suspectsOf(members, stats, "self", probe, now)
	want = map[string]bool{"silent": true, "new": true}
	if !maps.Equal(got, want) {
		t.Fatalf("suspects = %v, want %v", got, want)
	}
}

// startGossip runs one node's gossip on a free loopback port.
func startGossip(t *testing.T, id, cluster string, keys ...[]byte) *gossip {
	t.Helper()
	cfg := &Config{NodeID: id, ClusterName: cluster, GossipAddr: "127.0.0.1:0", GossipKeys: keys, Logger: slog.New(slog.DiscardHandler)}
	g, err := newGossip(cfg, memberMeta{Cluster: cluster, Version: metaVersion}, func() raftStats { return raftStats{} }, func() uint64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.shutdown)
	return g
}

func hasMember(g *gossip, id string) bool {
	m, ok := g.lookup(id)
	return ok && m.status == statusAlive
}

// TestGossipKeyAndLabelKeepStrangersOut is issue 11's gossip attack: a node
// without the key, with another key, or of another cluster never becomes a
// member, while one with the key joins; after a key rotation (new key
// first, old one still accepted) members keep talking.
func TestGossipKeyAndLabelKeepStrangersOut(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	next := bytes.Repeat([]byte{3}, 24) // the key being rotated in
	other := bytes.Repeat([]byte{2}, 16)
	seed := startGossip(t, "n1", "prod", key, next)
	seedAddr := []string{seed.addr}

	for _, tc := range []struct {
		name, id, cluster string
		keys              [][]byte
	}{
		{"no key", "nokey", "prod", nil},
		{"another key", "otherkey", "prod", [][]byte{other}},
		{"another cluster's label", "otherlabel", "staging", [][]byte{key}},
	} {
		g := startGossip(t, tc.id, tc.cluster, tc.keys...)
		if n, err := g.ml.Join(seedAddr); err == nil || n > 0 {
			t.Errorf("%s: joined (%d contacted, %v)", tc.name, n, err)
		}
		if hasMember(seed, tc.id) || hasMember(g, "n1") {
			t.Errorf("%s: appears as a member", tc.name)
		}
	}
	// A rotation in progress: n2 already encrypts with the new key, n1
	// still with the old one; each accepts both.
	n2 := startGossip(t, "n2", "prod", next, key)
	if _, err := n2.ml.Join(seedAddr); err != nil {
		t.Fatalf("n2, already on the new key, could not join: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !hasMember(seed, "n2") || !hasMember(n2, "n1") {
		if time.Now().After(deadline) {
			t.Fatal("n1 and n2 never saw each other")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, id := range []string{"nokey", "otherkey", "otherlabel"} {
		if _, ok := seed.lookup(id); ok {
			t.Errorf("%s reached n1's member table", id)
		}
	}
}
