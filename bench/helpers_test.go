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
		"BenchmarkMint/clients=64/dense":      {idsPS: 6000, p99: 15},
		"BenchmarkMint/clients=64/cached":     {idsPS: 12000, p99: 4.25},
		"BenchmarkMint/clients=64/zookeeper":  {idsPS: 5000, p99: 30, peer: "ZooKeeper"},
		"BenchmarkMint/clients=64/etcd":       {idsPS: 3000, p99: 20, peer: "etcd"},
		"BenchmarkMint/clients=1/dense":       {idsPS: 500, p99: 3},
		"BenchmarkMint/clients=1/zookeeper":   {failed: true},
		"BenchmarkMint/clients=1/etcd":        {idsPS: 1000, p99: 2, peer: "etcd"},
		"BenchmarkMint/clients=16/zookeeper":  {failed: true},
		"BenchmarkMint/clients=16/etcd":       {idsPS: 2000, p99: 10, peer: "etcd"},
		"BenchmarkMint/clients=256/dense":     {idsPS: 9000, p99: 80},
		"BenchmarkMint/clients=256/cached":    {failed: true},
		"BenchmarkMint/clients=256/zookeeper": {idsPS: 9000, p99: 120, peer: "ZooKeeper"},
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

func TestRESPLines(t *testing.T) {
	rs := map[string]result{
		"BenchmarkMint/clients=1/ceiling":           {idsPS: 10000, reqPS: 10000},
		"BenchmarkMint/clients=1/dense":             {idsPS: 500, p50: 1.5, p99: 3},
		"BenchmarkMint/clients=64/ceiling":          {idsPS: 20000, reqPS: 20000},
		"BenchmarkMint/clients=64/dense":            {idsPS: 6000, p50: 8, p99: 20},
		"BenchmarkMint/clients=64/cached":           {idsPS: 12000, p50: 4, p99: 16},
		"BenchmarkRESP/clients=1/dense":             {idsPS: 600, p50: 1.25, p99: 2.5, clients: 1, count: 1, resp: "go-redis"},
		"BenchmarkRESP/clients=1/cached":            {idsPS: 2400, p50: 0.4, p99: 1, clients: 1, count: 1, cached: true, resp: "go-redis"},
		"BenchmarkRESP/clients=64/dense":            {idsPS: 5400, p50: 9, p99: 25, clients: 64, count: 1, resp: "go-redis"},
		"BenchmarkRESP/clients=64/cached":           {failed: true},
		"BenchmarkRESP/clients=64/cached-pipelined": {idsPS: 24000, p50: 30, p99: 60, clients: 64, count: 1, cached: true, pipeline: 16, resp: "go-redis"},
		"BenchmarkRedisBenchmark/incr-cached-P16":   {idsPS: 30000, p50: 20, p99: 40, clients: 64, count: 1, cached: true, pipeline: 16, resp: "redis-benchmark"},
		"BenchmarkRESP/clients=256/dense":           {idsPS: 9000, p50: 20, p99: 80, clients: 256, count: 1, resp: "go-redis"},
	}
	order := []string{
		"BenchmarkMint/clients=1/ceiling", "BenchmarkMint/clients=1/dense", "BenchmarkMint/clients=64/dense",
		"BenchmarkRESP/clients=1/dense", "BenchmarkRESP/clients=1/cached", "BenchmarkRESP/clients=64/dense",
		"BenchmarkRESP/clients=64/cached", "BenchmarkRESP/clients=64/cached-pipelined", "BenchmarkRESP/clients=256/dense",
		"BenchmarkRedisBenchmark/incr-cached-P16",
	}
	want := []string{
		"BenchmarkRESP/clients=1/dense (go-redis): 600 IDs/s, 0.06× the ceiling, 1.20× HTTP dense next (500 IDs/s); p50/p99 ms 1.25/2.50 vs HTTP's 1.50/3.00",
		"BenchmarkRESP/clients=1/cached (go-redis): 2400 IDs/s, 0.24× the ceiling; p50/p99 ms 0.40/1.00",
		"BenchmarkRESP/clients=64/dense (go-redis): 5400 IDs/s, 0.27× the ceiling, 0.90× HTTP dense next (6000 IDs/s); p50/p99 ms 9.00/25.0 vs HTTP's 8.00/20.0",
		"BenchmarkRESP/clients=64/cached-pipelined (go-redis, 16 INCRs per round trip): 24000 IDs/s, 1.20× the ceiling, 2.00× HTTP cached next (12000 IDs/s); p50/p99 ms 30.0/60.0 vs HTTP's 4.00/16.0",
		"BenchmarkRESP/clients=256/dense (go-redis): 9000 IDs/s; p50/p99 ms 20.0/80.0",
		"BenchmarkRedisBenchmark/incr-cached-P16 (redis-benchmark, 16 INCRs per round trip): 30000 IDs/s, 1.50× the ceiling, 2.50× HTTP cached next (12000 IDs/s); p50/p99 ms 20.0/40.0 vs HTTP's 4.00/16.0",
		"Aim, dense INCR at least as fast as HTTP next: NOT met: go-redis at 1 client 1.20×, go-redis at 64 clients 0.90×",
		"Aim, cached INCR with pipelining at least 1.5× cached HTTP next: met: go-redis at 64 clients 2.00×, redis-benchmark at 64 clients 2.50×",
	}
	got := respLines(rs, order)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("respLines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := respLines(map[string]result{"BenchmarkMint/clients=1/dense": {idsPS: 1}}, []string{"BenchmarkMint/clients=1/dense"}); got != nil {
		t.Errorf("respLines without RESP runs = %q, want none", got)
	}
}

func TestParseRedisBenchmarkCSV(t *testing.T) {
	// redis-benchmark 7.0.15 --csv, as it printed against countd.
	out := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"INCR","19417.48","2.891","0.584","1.959","5.303","26.047","27.183"
`
	f, err := parseRedisBenchmarkCSV([]byte(out))
	if err != nil || f != (redisBenchmarkFigures{rps: 19417.48, p50: 1.959, p99: 26.047, max: 27.183}) {
		t.Errorf("parseRedisBenchmarkCSV = %+v, %v", f, err)
	}
	for _, bad := range []string{
		"",
		`"test","rps"` + "\n",
		`"test","rps","p50_latency_ms","p99_latency_ms"` + "\n" + `"INCR","1","2","3"` + "\n",
		strings.Replace(out, `"19417.48"`, `"fast"`, 1),
		strings.Replace(out, `"19417.48"`, `"0.00"`, 1),
		out + `"GET","1","2","3","4","5","6","7"` + "\n",
	} {
		if f, err := parseRedisBenchmarkCSV([]byte(bad)); err == nil {
			t.Errorf("parseRedisBenchmarkCSV(%q) = %+v, want an error", bad, f)
		}
	}
}
