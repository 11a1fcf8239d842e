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

func ctlEnv(t *testing.T, getenv func(string) string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb syncBuffer
	code := run(ctx, args, strings.NewReader(""), &out, &errb, getenv)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
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

	start := time.Now()
	args := []string{"-a", harness.DeadAddr(t), "--timeout", "300ms", "-i", "c", "counter", "get"}
	wantFailure(t, ctlEnv(t, env(), args...), 1, args)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("--timeout 300ms against a dead node took %s", el)
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

func TestContinuous(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-a", n.URL, "-i", "cont", "counter", "next", "--continuous"}, strings.NewReader(""), &out, &errb, env())
	}()
	harness.WaitFor(t, 20*time.Second, "continuous minting to print 20 lines", func() bool {
		return strings.Count(out.String(), "\n") >= 20
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after cancel; stderr %q", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("--continuous did not stop after its context was cancelled")
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	for i, l := range lines {
		v, err := strconv.ParseInt(l, 10, 64)
		if err != nil || v != int64(i+1) {
			t.Fatalf("line %d: want %d, got %q", i+1, i+1, l)
		}
	}
	if s := errb.String(); s != "" {
		t.Errorf("no retries happened, yet stderr has %q", s)
	}
}
