package bench

import (
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(lat, tc.p); got != tc.want {
			t.Errorf("percentile(1..100ms, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	if got := percentile(lat[:1], 0.99); got != time.Millisecond {
		t.Errorf("percentile of one = %v", got)
	}
}

func TestCheckMints(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mints []mint
		count int64
		err   string
	}{
		{"ok singles out of order", []mint{{3, 1}, {1, 1}, {2, 1}}, 1, ""},
		{"ok ranges", []mint{{1001, 1000}, {1, 1000}, {2001, 1000}}, 1000, ""},
		{"duplicate single", []mint{{1, 1}, {2, 1}, {2, 1}}, 1, "1 duplicated"},
		{"overlapping ranges", []mint{{1, 10}, {5, 10}}, 10, "1 duplicated"},
		{"gap", []mint{{1, 1}, {3, 1}}, 1, "1 gaps"},
		{"not from 1", []mint{{2, 1}}, 1, "1 gaps"},
		{"empty", nil, 1, ""},
	} {
		err := checkMints(tc.mints, tc.count, true)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.err)
		}
	}
	// After failed requests gaps are expected, duplicates never.
	if err := checkMints([]mint{{1, 1}, {5, 1}}, 1, false); err != nil {
		t.Errorf("gap with complete=false: %v", err)
	}
	if err := checkMints([]mint{{5, 1}, {5, 1}}, 1, false); err == nil {
		t.Error("duplicate with complete=false: no error")
	}
}

func TestZKSequence(t *testing.T) {
	if n, err := zkSequence("/bench-x/id-0000000042", "/bench-x/id-"); err != nil || n != 42 {
		t.Errorf("zkSequence = %d, %v; want 42", n, err)
	}
	for _, bad := range []string{"/bench-y/id-0000000042", "/bench-x/id-42", "/bench-x/id-00000000x2", "/bench-x/id-"} {
		if n, err := zkSequence(bad, "/bench-x/id-"); err == nil {
			t.Errorf("zkSequence(%q) = %d, want an error", bad, n)
		}
	}
}

func TestPeerLines(t *testing.T) {
	rs := map[string]result{
		"BenchmarkMint/clients=64/dense":       {idsPS: 6000, p99: 15},
		"BenchmarkMint/clients=64/cached":      {idsPS: 12000, p99: 4.25},
		"BenchmarkPeers/clients=64/zookeeper":  {idsPS: 5000, p99: 30, peer: "ZooKeeper"},
		"BenchmarkPeers/clients=64/etcd":       {idsPS: 3000, p99: 20, peer: "etcd"},
		"BenchmarkMint/clients=1/dense":        {idsPS: 500, p99: 3},
		"BenchmarkPeers/clients=1/zookeeper":   {failed: true},
		"BenchmarkPeers/clients=1/etcd":        {idsPS: 1000, p99: 2, peer: "etcd"},
		"BenchmarkPeers/clients=16/zookeeper":  {failed: true},
		"BenchmarkPeers/clients=16/etcd":       {idsPS: 2000, p99: 10, peer: "etcd"},
		"BenchmarkMint/clients=256/dense":      {idsPS: 9000, p99: 80},
		"BenchmarkMint/clients=256/cached":     {failed: true},
		"BenchmarkPeers/clients=256/zookeeper": {idsPS: 9000, p99: 120, peer: "ZooKeeper"},
	}
	want := []string{
		"1 client: dense 0.50× etcd; p99 ms: dense 3.00, etcd 2.00",
		"64 clients: dense 1.20× ZooKeeper, 2.00× etcd; cached 2.40× ZooKeeper, 4.00× etcd; p99 ms: dense 15.0, cached 4.25, ZooKeeper 30.0, etcd 20.0",
		"256 clients: dense 1.00× ZooKeeper; p99 ms: dense 80.0, ZooKeeper 120",
	}
	got := peerLines(rs)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("peerLines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
