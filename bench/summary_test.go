package bench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
)

// result is one benchmark run's numbers.
type result struct {
	name    string
	clients int
	count   int
	idem    bool
	secure  bool   // against the cluster in the production configuration
	cached  bool   // a cached counter
	ceiling bool   // the in-memory ceiling server, not countd
	peer    string // "ZooKeeper" or "etcd" (make bench-peers), "" for countd
	n       int
	idsPS   float64
	reqPS   float64
	p50     float64 // ms
	p99     float64 // ms
	max     float64 // ms
	failed  bool    // a run of this benchmark failed; its numbers are not shown

	// resp is the Redis-protocol client, "go-redis" (BenchmarkRESP) or
	// "redis-benchmark", "" for HTTP; pipeline is the INCRs it sent per
	// round trip when it pipelined (a request is then a round trip).
	resp     string
	pipeline int

	// cpuOK says the CPU each process used per request (µs) was
	// measured: the leader's, the other nodes' together, and this
	// process's (the load generator; for the ceiling, the server too).
	cpuOK                              bool
	cpuLeader, cpuFollowers, cpuClient float64
}

// idsPerRequest is the IDs one request (one round trip) got.
func (r result) idsPerRequest() int { return r.count * max(r.pipeline, 1) }

var (
	resultsMu sync.Mutex
	results   = map[string]result{}
	order     []string
)

// record keeps, per benchmark name, the run with the largest b.N: the
// framework's calibration runs are smaller than the measured one.
func record(r result) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	prev, ok := results[r.name]
	if !ok {
		order = append(order, r.name)
	}
	if !ok || r.n >= prev.n {
		results[r.name] = r
	}
}

// recordFailure marks a benchmark as failed in the summary.
func recordFailure(name string) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	r, ok := results[name]
	if !ok {
		order = append(order, name)
		r.name = name
	}
	r.failed = true
	results[name] = r
}

// printSummary writes a markdown table of the measured runs, ready to paste
// into a README.
func printSummary(w io.Writer) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if len(order) == 0 {
		return
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = "; load average at the end: " + strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if f := os.Getenv("COUNTD_BENCH_NODE_FLAGS"); f != "" {
		load += "; node flags: " + f
	}
	fmt.Fprintf(w, "\nSummary (3-node cluster on 127.0.0.1, fsync on; the client shares the machine's %d CPUs with the nodes%s):\n\n",
		runtime.NumCPU(), load)
	fmt.Fprintln(w, "| benchmark | clients | IDs/request | Idempotency-Key | requests | IDs/s | requests/s | × ceiling | p50 ms | p99 ms | max ms | CPU µs/request: leader, other nodes, client |")
	fmt.Fprintln(w, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, name := range order {
		r := results[name]
		if r.failed {
			fmt.Fprintf(w, "| %s | FAILED (see above) |||||||||||\n", name)
			continue
		}
		idem := "no"
		if r.idem {
			idem = "yes"
		}
		ratio := "—"
		if top, ok := results[fmt.Sprintf("BenchmarkMint/clients=%d/ceiling", r.clients)]; ok && !top.failed && top.reqPS > 0 {
			ratio = fmt.Sprintf("%.2f", r.reqPS/top.reqPS)
		}
		cpu := "—"
		switch {
		case r.cpuOK && r.ceiling:
			cpu = fmt.Sprintf("—, —, %.0f", r.cpuClient)
		case r.cpuOK:
			cpu = fmt.Sprintf("%.0f, %.0f, %.0f", r.cpuLeader, r.cpuFollowers, r.cpuClient)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %d | %.0f | %.0f | %s | %.2f | %.2f | %.2f | %s |\n",
			name, r.clients, r.idsPerRequest(), idem, r.n, r.idsPS, r.reqPS, ratio, r.p50, r.p99, r.max, cpu)
	}
	fmt.Fprintln(w)
	if lines := respLines(results, order); len(lines) > 0 {
		tools := "go-redis " + goRedisVersion()
		if redisBenchmarkVersion != "" {
			tools += " and " + redisBenchmarkVersion
		}
		fmt.Fprintf(w, "The Redis protocol (INCR over RESP2 to the leader, %s; a pipelined request above is one round trip of several INCRs): IDs/s as ratios to the ceiling's and to HTTP next's of the same kind and client count, same run; p50/p99 per round trip:\n\n", tools)
		for _, l := range lines {
			fmt.Fprintln(w, "- "+l)
		}
		fmt.Fprintln(w)
	}
	if lines := peerLines(results); len(lines) > 0 {
		fmt.Fprintf(w, "countd's IDs/s as ratios to its peers' (%s, 3 servers each on 127.0.0.1, every write fsynced; same run, same client):\n\n", peerVersions())
		for _, l := range lines {
			fmt.Fprintln(w, "- "+l)
		}
		fmt.Fprintln(w)
	}
	plain, ok1 := results["BenchmarkMint/clients=64/dense"]
	secure, ok2 := results["BenchmarkNextSecure/clients=64"]
	if ok1 && ok2 && !plain.failed && !secure.failed && plain.idsPS > 0 {
		fmt.Fprintf(w, "The cost of security at 64 clients (TLS, gossip key, ACLs vs none, same run): %.2f× the throughput, p99 %.2f ms vs %.2f ms.\n\n",
			secure.idsPS/plain.idsPS, secure.p99, plain.p99)
	}
}

// measured is the result of the run name when it succeeded with a
// throughput.
func measured(results map[string]result, name string) (result, bool) {
	r, ok := results[name]
	return r, ok && !r.failed && r.idsPS > 0
}

// respAims are the aims for the Redis protocol: which RESP runs
// they are about and the least ratio to HTTP next of the same kind and
// client count each such run must reach.
var respAims = []struct {
	text    string
	min     float64
	applies func(result) bool
}{
	{"dense INCR at least as fast as HTTP next", 1, func(r result) bool { return !r.cached && r.pipeline <= 1 }},
	{"cached INCR with pipelining at least 1.5× cached HTTP next", 1.5, func(r result) bool { return r.cached && r.pipeline > 1 }},
}

// respLines gives, for every RESP run in order, its IDs/s as ratios to
// the ceiling and to HTTP next of the same kind (dense or cached) and
// client count, with both p50/p99; then whether each of respAims is met.
// A run that failed is left out, and so is a ratio to a figure missing or
// failed.
func respLines(results map[string]result, order []string) []string {
	var lines []string
	aimRatios := make([][]string, len(respAims))
	aimMissed := make([]bool, len(respAims))
	for _, name := range order {
		r, ok := measured(results, name)
		if !ok || r.resp == "" {
			continue
		}
		kind := "dense"
		if r.cached {
			kind = "cached"
		}
		how := r.resp
		if r.pipeline > 1 {
			how += fmt.Sprintf(", %d INCRs per round trip", r.pipeline)
		}
		parts := []string{fmt.Sprintf("%.0f IDs/s", r.idsPS)}
		if top, ok := measured(results, fmt.Sprintf("BenchmarkMint/clients=%d/ceiling", r.clients)); ok {
			parts = append(parts, fig(r.idsPS/top.idsPS)+"× the ceiling")
		}
		latency := fmt.Sprintf("p50/p99 ms %s/%s", fig(r.p50), fig(r.p99))
		if h, ok := measured(results, fmt.Sprintf("BenchmarkMint/clients=%d/%s", r.clients, kind)); ok {
			ratio := r.idsPS / h.idsPS
			parts = append(parts, fmt.Sprintf("%s× HTTP %s next (%.0f IDs/s)", fig(ratio), kind, h.idsPS))
			latency += fmt.Sprintf(" vs HTTP's %s/%s", fig(h.p50), fig(h.p99))
			for i, a := range respAims {
				if a.applies(r) {
					aimRatios[i] = append(aimRatios[i], fmt.Sprintf("%s at %s %s×", r.resp, clientsText(r.clients), fig(ratio)))
					aimMissed[i] = aimMissed[i] || ratio < a.min
				}
			}
		}
		lines = append(lines, fmt.Sprintf("%s (%s): %s; %s", name, how, strings.Join(parts, ", "), latency))
	}
	if len(lines) == 0 {
		return nil
	}
	for i, a := range respAims {
		verdict := "met"
		switch {
		case len(aimRatios[i]) == 0:
			verdict = "not measured (no such RESP run with an HTTP figure in this run)"
		case aimMissed[i]:
			verdict = "NOT met"
		}
		if len(aimRatios[i]) > 0 {
			verdict += ": " + strings.Join(aimRatios[i], ", ")
		}
		lines = append(lines, fmt.Sprintf("Aim, %s: %s", a.text, verdict))
	}
	return lines
}

// peerLines gives, per client count, countd's dense and cached throughput
// as ratios to ZooKeeper's and etcd's and the p99 latencies side by side;
// a client count without a peer result or without countd's has no line,
// a figure that is missing or failed is left out.
func peerLines(results map[string]result) []string {
	var lines []string
	for _, clients := range clientCounts {
		var peers []result
		for _, p := range []string{"zookeeper", "etcd"} {
			if r, ok := measured(results, fmt.Sprintf("BenchmarkMint/clients=%d/%s", clients, p)); ok {
				peers = append(peers, r)
			}
		}
		if len(peers) == 0 {
			continue
		}
		var parts, p99s []string
		for _, kind := range []string{"dense", "cached"} {
			r, ok := measured(results, fmt.Sprintf("BenchmarkMint/clients=%d/%s", clients, kind))
			if !ok {
				continue
			}
			var ratios []string
			for _, p := range peers {
				ratios = append(ratios, fmt.Sprintf("%s× %s", fig(r.idsPS/p.idsPS), p.peer))
			}
			parts = append(parts, kind+" "+strings.Join(ratios, ", "))
			p99s = append(p99s, kind+" "+fig(r.p99))
		}
		if len(parts) == 0 {
			continue // nothing of countd's to compare
		}
		for _, p := range peers {
			p99s = append(p99s, p.peer+" "+fig(p.p99))
		}
		parts = append(parts, "p99 ms: "+strings.Join(p99s, ", "))
		lines = append(lines, fmt.Sprintf("%s: %s", clientsText(clients), strings.Join(parts, "; ")))
	}
	return lines
}

// clientsText is "1 client", "16 clients".
func clientsText(n int) string {
	if n == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d clients", n)
}

// peerVersions names the peers that ran, with their versions.
func peerVersions() string {
	var names []string
	for _, p := range []*peer{zkPeer, etcdPeer} {
		if p != nil {
			names = append(names, strings.TrimSpace(p.name+" "+p.version))
		}
	}
	return strings.Join(names, " and ")
}

// fig formats a ratio or a latency with two or three significant digits.
func fig(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
