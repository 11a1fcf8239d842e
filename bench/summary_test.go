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
	peer    string // "ZooKeeper" or "etcd" (BenchmarkPeers), "" for countd
	n       int
	idsPS   float64
	reqPS   float64
	p50     float64 // ms
	p99     float64 // ms
	max     float64 // ms
	failed  bool    // a run of this benchmark failed; its numbers are not shown
}

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
	fmt.Fprintln(w, "| benchmark | clients | IDs/request | Idempotency-Key | requests | IDs/s | requests/s | × ceiling | p50 ms | p99 ms | max ms |")
	fmt.Fprintln(w, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, name := range order {
		r := results[name]
		if r.failed {
			fmt.Fprintf(w, "| %s | FAILED (see above) ||||||||||\n", name)
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
		fmt.Fprintf(w, "| %s | %d | %d | %s | %d | %.0f | %.0f | %s | %.2f | %.2f | %.2f |\n",
			name, r.clients, r.count, idem, r.n, r.idsPS, r.reqPS, ratio, r.p50, r.p99, r.max)
	}
	fmt.Fprintln(w)
	plain, ok1 := results["BenchmarkMint/clients=64/dense"]
	secure, ok2 := results["BenchmarkNextSecure/clients=64"]
	if ok1 && ok2 && !plain.failed && !secure.failed && plain.idsPS > 0 {
		fmt.Fprintf(w, "The cost of security at 64 clients (TLS, gossip key, ACLs vs none, same run): %.2f× the throughput, p99 %.2f ms vs %.2f ms.\n\n",
			secure.idsPS/plain.idsPS, secure.p99, plain.p99)
	}
}
