package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout: " + r.stdout + "\nstderr: " + r.stderr
}

// env is a getenv over a fixed map, so the real environment never leaks in.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// runCtl runs countctl with stdin, environment and args to its end.
func runCtl(t *testing.T, stdin string, getenv func(string) string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb syncBuffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb, getenv)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func ctlEnv(t *testing.T, getenv func(string) string, args ...string) result {
	t.Helper()
	return runCtl(t, "", getenv, args...)
}

// background is a countctl run in the background, whose output can be
// read while it runs.
type background struct {
	stdout, stderr syncBuffer
	done           chan int
}

// startCtl runs countctl with args until it exits or ctx ends.
func startCtl(ctx context.Context, args ...string) *background {
	b := &background{done: make(chan int, 1)}
	go func() { b.done <- run(ctx, args, strings.NewReader(""), &b.stdout, &b.stderr, env()) }()
	return b
}

// exited returns countctl's result if it has exited, without waiting.
func (b *background) exited() (result, bool) {
	select {
	case code := <-b.done:
		b.done <- code // keep it for exit
		return result{code: code, stdout: b.stdout.String(), stderr: b.stderr.String()}, true
	default:
		return result{}, false
	}
}

// exit waits for countctl to exit and returns its result. The bound is a
// guard against a hang, not a measure of speed.
func (b *background) exit(t *testing.T, what string) result {
	t.Helper()
	select {
	case code := <-b.done:
		b.done <- code
		return result{code: code, stdout: b.stdout.String(), stderr: b.stderr.String()}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: countctl did not exit", what)
		return result{}
	}
}

// served counts the requests base has answered for method and route
// template (all status codes), from its metrics.
func served(t *testing.T, base, method, route string) float64 {
	t.Helper()
	var total float64
	for _, code := range []string{"200", "204", "307", "400", "404", "409", "503"} {
		v, _ := harness.Scrape(t, base).Value("countd_http_requests_total", "method", method, "route", route, "code", code)
		total += v
	}
	return total
}

// ctl runs countctl against base with args.
func ctl(t *testing.T, base string, args ...string) result {
	t.Helper()
	return ctlEnv(t, env(), append([]string{"-a", base}, args...)...)
}

// oneLine checks that s is exactly one non-empty line with a newline.
func oneLine(t *testing.T, what, s string) {
	t.Helper()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 || len(strings.TrimSpace(s)) == 0 {
		t.Errorf("%s: want exactly one line, got %q", what, s)
	}
}

func wantFailure(t *testing.T, r result, code int, args []string) {
	t.Helper()
	if r.code != code {
		t.Errorf("countctl %q: want exit %d, got %s", args, code, r)
		return
	}
	oneLine(t, "stderr of "+strings.Join(args, " "), r.stderr)
	if r.stdout != "" {
		t.Errorf("countctl %q: stdout must be empty on failure, got %q", args, r.stdout)
	}
}

func wantSuccess(t *testing.T, r result, args []string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("countctl %q: want exit 0, got %s", args, r)
	}
	if r.stderr != "" {
		t.Errorf("countctl %q: stderr on success: %q", args, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	// No server needed: usage errors are found before any request. The
	// address is dead so a request would fail with exit 1, not 2.
	dead := harness.DeadAddr(t)
	for _, args := range [][]string{
		{"--bogus", "-i", "c", "counter", "get"},
		{"-i", "c", "counter", "get", "--bogus"},
		{"-i", "c", "counter", "get", "-x"},
		{"bogus"},
		{"-i", "c", "counter", "bogus"},
		{"-i", "c", "counter", "get", "extra"},
		{"cluster", "remove"},
		{"cluster", "remove", "a", "b"},
		{"cluster", "transfer", "a", "b"},
		{"cluster", "leave", "n1"},
		{"counter", "get"},
		{"counter", "next"},
		{"counter", "add", "5"},
		{"counter", "set", "5"},
		{"counter", "rm"},
		{"-i", "c", "counter", "add"},
		{"-i", "c", "counter", "add", "abc"},
		{"-i", "c", "counter", "add", "1", "2"},
		{"-i", "c", "counter", "add", "5", "--default", "x"},
		{"-i", "c", "counter", "set"},
		{"-i", "c", "counter", "set", "1.5"},
		{"-i", "c", "counter", "set", "--increment", "x"},
		{"-i", "c", "-o", "yaml", "counter", "get"},
		{"-i", "c", "counter", "next", "--count", "0"},
		{"-i", "c", "counter", "next", "--count", "x"},
		{"-i", "c", "--timeout", "soon", "counter", "get"},
		{"-i", "c", "--timeout", "0s", "counter", "get"},
		{"-i", "c", "counter", "get", "--timeout"},

		{"-i", "q", "queue"},
		{"-i", "q", "queue", "bogus"},
		{"-i", "q", "queue", "join"},
		{"queue", "-p", "me", "join"},
		{"-i", "q", "queue", "-p", "me", "join", "extra"},
		{"-i", "q", "queue", "-p", "me", "join", "--tag", "novalue"},
		{"-i", "q", "queue", "-p", "me", "join", "--tag", "=v"},
		{"-i", "q", "queue", "-p", "me", "join", "--tag", "a=1", "--tag", "a=2"},
		{"-i", "q", "queue", "-p", "me", "join", "--myid-file"},
		{"-i", "q", "queue", "leave"},
		{"-i", "q", "queue", "get"},
		{"queue", "list"},
		{"queue", "rm"},
		{"-i", "q", "queue", "list", "extra"},
		{"-i", "q", "queue", "config"},
		{"-i", "q", "queue", "config", "--min", "x"},
		{"-i", "q", "queue", "config", "--max", "1.5"},
		{"-i", "q", "queue", "config", "--reuse=maybe"},
		{"-i", "q", "queue", "wait"},
		{"-i", "q", "queue", "wait", "--members", "x"},
		{"-i", "q", "queue", "wait", "--members", "-1"},
		{"-i", "q", "queue", "zk-config", "--ports", "2888"},
		{"-i", "q", "queue", "zk-config", "--ports", "a:b"},
		{"-i", "q", "queue", "zk-config", "--ports", "0:3888"},
		{"-i", "q", "queue", "zk-config", "--ports", "2888:70000"},
		{"-i", "q", "queue", "zk-config", "--ports", "2888:3888:1"},
		{"-i", "q", "queue", "zk-config", "--client-port", "0"},
		{"-i", "q", "queue", "zk-config", "--client-port", "x"},

		{"items"},
		{"items", "bogus"},
		{"items", "add"},
		{"items", "add", "tenant"},
		{"items", "count"},
		{"items", "count", "a", "b"},

		{"doc"},
		{"doc", "get"},
		{"doc", "get", "a", "b"},
		{"doc", "put", "d", "--value", "{bad"},
		{"doc", "put", "d", "--value", ""},
		{"doc", "put", "d", "--value", "{}", "-f", "x.json"},
		{"doc", "put", "d", "--value", "{}", "--if-match", "x"},
		{"doc", "put", "d", "--value", "{}", "--if-match", "-3"},
		{"doc", "put", "d", "--value", "{}", "--if-match", "1", "--if-absent"},
		{"doc", "patch", "d", "--value", "{}", "--if-absent"},
		{"doc", "patch"},
		{"doc", "rm", "d", "--if-match", "v1"},
		{"doc", "watch"},
		{"doc", "watch", "d", "--since", "x"},
		{"doc", "watch", "d", "--since", "-1"},
	} {
		full := append([]string{"-a", dead}, args...)
		wantFailure(t, ctlEnv(t, env(), full...), 2, full)
	}
	// Addresses that cannot be a node's URL are usage errors at once, from
	// -a or COUNTD_ADDR, never retried until --timeout (which is long here:
	// a retry would hang the test).
	for _, addr := range []string{
		"http://127.0.0.1:99999", "http://127.0.0.1:0", "ftp://127.0.0.1:8080", "http://127.0.0.1:8080/v1",
		"http://127.0.0.1:8080?x=1", "http://user:pw@127.0.0.1:8080", "http://", "http:", "127.0.0.1:", "127.0.0.1:8080,http://[::1",
	} {
		args := []string{"-a", addr, "--timeout", "1h", "-i", "c", "counter", "get"}
		wantFailure(t, ctlEnv(t, env(), args...), 2, args)
		getenv := func(k string) string {
			if k == "COUNTD_ADDR" {
				return addr
			}
			return env()(k)
		}
		args = args[2:]
		wantFailure(t, ctlEnv(t, getenv, args...), 2, append([]string{"COUNTD_ADDR=" + addr}, args...))
	}
}

func TestRuntimeFailures(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	wantSuccess(t, ctl(t, n.URL, "-i", "cas", "counter", "set", "5"), nil)
	wantSuccess(t, ctl(t, n.URL, "-i", "mono", "counter", "set", "3", "--monotonic"), nil)
	wantSuccess(t, ctl(t, n.URL, "-i", "max", "counter", "set", "9223372036854775807"), nil)
	for _, args := range [][]string{
		{"-i", "a b", "counter", "get"},
		{"-i", "a b", "counter", "next"},
		{"-i", "..", "counter", "add", "1"},
		{"-i", strings.Repeat("x", 257), "counter", "set", "1"},
		{"-i", "cas", "counter", "set", "7", "--if-value", "99"},
		{"-i", "mono", "counter", "set", "1"},
		{"-i", "mono", "counter", "rm"},
		{"-i", "max", "counter", "next"},
		{"-i", "c", "counter", "next", "--count", "1000001"},
		// A single in-memory node: no gossip to leave, nobody to lead
		// instead, no such member.
		{"cluster", "leave"},
		{"cluster", "transfer"},
		{"cluster", "transfer", "n9"},
		{"cluster", "remove", "n9"},
		{"cluster", "remove", "a b"},
	} {
		wantFailure(t, ctl(t, n.URL, args...), 1, args)
	}
	r := ctl(t, n.URL, "-i", "cas", "counter", "get", "-o", "text")
	if r.code != 0 || r.stdout != "5\n" {
		t.Errorf("a failed CAS changed the counter: %s", r)
	}

	// Nothing else bounds this run (its context has no deadline), so only
	// --timeout can end the retries against a dead node: the run ending
	// with a deadline error proves it applies.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	args := []string{"-a", harness.DeadAddr(t), "--timeout", "300ms", "-i", "c", "counter", "get"}
	r = startCtl(ctx, args...).exit(t, "--timeout 300ms against a dead node")
	wantFailure(t, r, 1, args)
	if !strings.Contains(r.stderr, "deadline exceeded") {
		t.Errorf("--timeout should end it with a deadline error: %s", r)
	}
	// Retry notes only with -v; the final failure is still one line.
	args = []string{"-a", harness.DeadAddr(t), "--timeout", "300ms", "-v", "-i", "c", "counter", "get"}
	r = ctlEnv(t, env(), args...)
	if r.code != 1 || !strings.Contains(r.stderr, "retrying") {
		t.Errorf("-v should note retries: %s", r)
	}
}

func TestOutputs(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})

	t.Run("get json", func(t *testing.T) {
		r := ctl(t, n.URL, "-i", "g", "counter", "get")
		wantSuccess(t, r, nil)
		var m map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		if m["id"] != "g" || m["value"] != float64(0) || m["cluster"] != n.Node.ClusterName() || m["cluster"] != "countd" {
			t.Errorf("get: %s", r.stdout)
		}
	})

	t.Run("next --count 3 -o text", func(t *testing.T) {
		r := ctl(t, n.URL, "-i", "nt", "counter", "next", "--count", "3", "-o", "text")
		wantSuccess(t, r, nil)
		if r.stdout != "1\n2\n3\n" {
			t.Errorf("want three integers, got %q", r.stdout)
		}
		wantSuccess(t, ctl(t, n.URL, "-i", "odd", "counter", "set", "--increment", "2", "--offset", "1"), nil)
		r = ctl(t, n.URL, "-i", "odd", "counter", "next", "--count", "3", "-o", "text")
		if r.code != 0 || r.stdout != "1\n3\n5\n" {
			t.Errorf("odd ids: %s", r)
		}
	})

	t.Run("next json", func(t *testing.T) {
		r := ctl(t, n.URL, "-i", "nj", "counter", "next", "--count", "2")
		wantSuccess(t, r, nil)
		var m map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		for _, k := range []string{"id", "value", "first", "count", "cluster"} {
			if _, ok := m[k]; !ok {
				t.Errorf("next JSON lacks %q: %s", k, r.stdout)
			}
		}
		if m["id"] != "nj" || m["first"] != float64(1) || m["value"] != float64(2) || m["count"] != float64(2) || m["cluster"] != "countd" {
			t.Errorf("next JSON: %s", r.stdout)
		}
	})

	t.Run("add with default", func(t *testing.T) {
		r := ctl(t, n.URL, "-i", "ad", "counter", "add", "5", "--default", "10")
		wantSuccess(t, r, nil)
		var m map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		if m["id"] != "ad" || m["value"] != float64(15) || m["cluster"] != "countd" {
			t.Errorf("add: %s", r.stdout)
		}
		r = ctl(t, n.URL, "-i", "ad", "-o", "text", "counter", "add", "--", "-20")
		if r.code != 0 || r.stdout != "-5\n" {
			t.Errorf("add -- -20: %s", r)
		}
	})

	t.Run("list text table", func(t *testing.T) {
		for _, id := range []string{"tb-b", "tb-a"} {
			wantSuccess(t, ctl(t, n.URL, "-i", id, "counter", "set", "7"), nil)
		}
		r := ctl(t, n.URL, "counter", "list", "--prefix", "tb-", "-o", "text")
		wantSuccess(t, r, nil)
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("want a header and two rows, got %q", r.stdout)
		}
		if h := strings.Fields(lines[0]); len(h) < 2 || h[0] != "ID" || h[1] != "VALUE" {
			t.Errorf("header: %q", lines[0])
		}
		for i, id := range []string{"tb-a", "tb-b"} {
			f := strings.Fields(lines[i+1])
			if len(f) < 2 || f[0] != id || f[1] != "7" {
				t.Errorf("row %d: %q", i+1, lines[i+1])
			}
		}
		r = ctl(t, n.URL, "counter", "list", "--prefix", "tb-")
		var out struct {
			Counters []map[string]any `json:"counters"`
			Cluster  string           `json:"cluster"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Counters) != 2 || out.Counters[0]["id"] != "tb-a" {
			t.Errorf("list JSON: %s (%v)", r.stdout, err)
		}
	})

	t.Run("rm of a monotonic counter needs --force", func(t *testing.T) {
		wantSuccess(t, ctl(t, n.URL, "-i", "rmm", "counter", "set", "9", "--monotonic"), nil)
		args := []string{"-i", "rmm", "counter", "rm"}
		wantFailure(t, ctl(t, n.URL, args...), 1, args)
		if r := ctl(t, n.URL, "-i", "rmm", "-o", "text", "counter", "get"); r.stdout != "9\n" {
			t.Errorf("refused rm changed the counter: %s", r)
		}
		wantSuccess(t, ctl(t, n.URL, "-i", "rmm", "counter", "rm", "--force"), nil)
		if r := ctl(t, n.URL, "-i", "rmm", "-o", "text", "counter", "get"); r.stdout != "0\n" {
			t.Errorf("after rm --force: %s", r)
		}
		wantSuccess(t, ctl(t, n.URL, "-i", "rmm", "counter", "rm"), nil) // idempotent
	})

	t.Run("COUNTD_ADDR", func(t *testing.T) {
		r := ctlEnv(t, env("COUNTD_ADDR", n.URL), "-i", "envc", "-o", "text", "counter", "next")
		if r.code != 0 || r.stdout != "1\n" {
			t.Errorf("COUNTD_ADDR: %s", r)
		}
		// -a overrides the environment; a comma list may start with a dead node.
		r = ctlEnv(t, env("COUNTD_ADDR", harness.DeadAddr(t)), "-a", harness.DeadAddr(t)+","+n.URL, "-i", "envc", "-o", "text", "counter", "next")
		if r.code != 0 || r.stdout != "2\n" {
			t.Errorf("-a over COUNTD_ADDR: %s", r)
		}
	})
}

// TestOneShotSendsOnlyItsRequest: a one-shot command asks the cluster for
// its nodes only when it has to fail over, so one that works sends its own
// requests and nothing else.
func TestOneShotSendsOnlyItsRequest(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	for _, args := range [][]string{
		{"-i", "os", "counter", "next"},
		{"-i", "os", "counter", "get"},
		{"-i", "osq", "queue", "list"},
		{"items", "count", "ost", "--stale"},
	} {
		wantSuccess(t, ctl(t, n.URL, args...), args)
	}
	if got := served(t, n.URL, "GET", "/v1/cluster"); got != 0 {
		t.Errorf("one-shot commands asked GET /v1/cluster %v times", got)
	}
	wantSuccess(t, ctl(t, n.URL, "cluster", "status"), nil)
	if got := served(t, n.URL, "GET", "/v1/cluster"); got != 1 {
		t.Errorf("cluster status asked GET /v1/cluster %v times, want once", got)
	}
	// One that must fail over still finds a node that answers.
	r := ctl(t, harness.DeadAddr(t)+","+n.URL, "-i", "os", "-o", "text", "counter", "next")
	if r.code != 0 || r.stdout != "2\n" {
		t.Errorf("failing over from a dead node: %s", r)
	}
}

func TestContinuous(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startCtl(ctx, "-a", n.URL, "-i", "cont", "counter", "next", "--continuous")
	harness.WaitFor(t, 20*time.Second, "continuous minting to print 20 lines", func() bool {
		return strings.Count(c.stdout.String(), "\n") >= 20
	})
	cancel()
	r := c.exit(t, "--continuous after its context was cancelled")
	if r.code != 0 {
		t.Errorf("exit %d after cancel; stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	for i, l := range lines {
		v, err := strconv.ParseInt(l, 10, 64)
		if err != nil || v != int64(i+1) {
			t.Fatalf("line %d: want %d, got %q", i+1, i+1, l)
		}
	}
	if r.stderr != "" {
		t.Errorf("no retries happened, yet stderr has %q", r.stderr)
	}
}
