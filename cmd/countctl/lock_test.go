package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func TestLockRunsTheCommandWithTheLockInItsEnvironment(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	args := []string{"lock", "job", "--ttl", "5s", "--", "sh", "-c", `echo "$COUNTD_LOCK $COUNTD_FENCING_TOKEN $COUNTD_SESSION"; exit 3`}
	r := ctl(t, n.URL, args...)
	if r.code != 3 {
		t.Fatalf("countctl %q: want CMD's exit 3, got %s", args, r)
	}
	f := strings.Fields(r.stdout)
	if len(f) != 3 || f[0] != "job" || f[1] == "0" || f[2] == "" {
		t.Fatalf("CMD saw %q", r.stdout)
	}
	// The place and the session are given up afterwards.
	q := ctl(t, n.URL, "-i", "job", "queue", "list", "-o", "text")
	if strings.Contains(q.stdout, "session-") {
		t.Fatalf("the lock queue still holds the place: %s", q.stdout)
	}
	for _, bad := range [][]string{
		{"lock", "job"},
		{"lock", "job", "--ttl", "500ms", "--", "true"},
		{"lock", "job", "--limit", "0", "--", "true"},
		{"lock", "job", "extra", "--", "true"},
	} {
		wantFailure(t, ctl(t, n.URL, bad...), 2, bad)
	}
}

func TestConcurrentLocksNeverOverlap(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	dir := t.TempDir()
	held := filepath.Join(dir, "held")
	logPath := filepath.Join(dir, "log")
	// Each holder fails loudly if another holds the lock, and logs its
	// fencing token.
	script := fmt.Sprintf(`if [ -e %[1]s ]; then echo OVERLAP; exit 9; fi
touch %[1]s; echo "$COUNTD_FENCING_TOKEN" >> %[2]s; sleep 0.2; rm %[1]s`, held, logPath)
	var wg sync.WaitGroup
	results := make([]result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = ctl(t, n.URL, "lock", "mutex", "--ttl", "5s", "--", "sh", "-c", script)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("holder %d: %s", i, r)
		}
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	tokens := strings.Fields(string(data))
	if len(tokens) != 4 {
		t.Fatalf("%d holders ran, want 4: %q", len(tokens), tokens)
	}
	for i := 1; i < len(tokens); i++ {
		a, _ := strconv.Atoi(tokens[i-1])
		b, _ := strconv.Atoi(tokens[i])
		if b <= a {
			t.Fatalf("fencing tokens did not rise from one holder to the next: %v", tokens)
		}
	}
}

// gate is a loopback proxy in front of a node that a test can cut: while
// cut it drops every connection it is asked to serve, so countctl cannot
// reach the cluster while the test still reaches the node directly. It
// answers /v1/cluster with 404, so that the client never learns the
// node's own address and goes around it.
type gate struct {
	*httptest.Server
	cut     atomic.Bool
	renewed atomic.Int64 // renews answered through the gate
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	g := &gate{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/cluster" {
			http.NotFound(w, r)
			return
		}
		if g.cut.Load() {
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				_ = c.Close()
			}
			return
		}
		proxy.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/renew") {
			g.renewed.Add(1)
		}
	}))
	t.Cleanup(g.Close)
	return g
}

// waitFile waits for path to hold a whole line and returns its fields.
func waitFile(t *testing.T, bg *background, path, what string) []string {
	t.Helper()
	var f []string
	harness.WaitFor(t, 20*time.Second, what, func() bool {
		if r, ok := bg.exited(); ok {
			t.Fatalf("countctl exited before %s: %s", what, r)
		}
		data, err := os.ReadFile(path)
		f = strings.Fields(string(data))
		return err == nil && strings.HasSuffix(string(data), "\n")
	})
	return f
}

func processGone(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return errors.Is(err, os.ErrNotExist)
}

// TestLockKillsACommandThatIgnoresSIGTERMBeforeItsSessionCanEnd cuts a
// holder off from the cluster while its command ignores SIGTERM: the
// command must be dead (and reaped) while the node still has the
// session, and countctl must then exit within its --timeout even though
// it cannot give the lock up.
func TestLockKillsACommandThatIgnoresSIGTERMBeforeItsSessionCanEnd(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	g := newGate(t, n.URL)
	const (
		ttl     = time.Second
		timeout = time.Second
	)
	info := filepath.Join(t.TempDir(), "info")
	// exec keeps the pid: the process countctl started, that holds the
	// lock and that ignores SIGTERM (an ignored signal stays ignored
	// across exec) is the one whose pid the test watches.
	script := `trap '' TERM; echo "$$ $COUNTD_SESSION" > '` + info + `.tmp' && mv '` + info + `.tmp' '` + info + `' && exec sleep 600`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bg := startCtl(ctx, "-a", g.URL, "--timeout", timeout.String(), "lock", "job", "--ttl", ttl.String(), "--", "sh", "-c", script)
	f := waitFile(t, bg, info, "the command to start")
	pid, err := strconv.Atoi(f[0])
	if err != nil || len(f) != 2 {
		t.Fatalf("the command wrote %q", f)
	}
	session := f[1]
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil && !processGone(pid) {
			_ = p.Kill()
		}
	})
	direct, err := client.New(client.Config{Addrs: []string{n.URL}})
	if err != nil {
		t.Fatal(err)
	}

	cut := time.Now()
	g.cut.Store(true)
	// Proof that the command died before the session ended: the pid was
	// gone before a read that still found the session alive began.
	var gone, provenAt, ended time.Time
	harness.WaitFor(t, 5*ttl, "the node to end the session", func() bool {
		if gone.IsZero() && processGone(pid) {
			gone = time.Now()
		}
		asked := time.Now()
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		defer rcancel()
		_, err := direct.Session(rctx, session)
		switch {
		case err == nil:
			if !gone.IsZero() && provenAt.IsZero() {
				provenAt = asked
			}
			return false
		case client.IsCode(err, api.CodeNotFound):
			ended = time.Now()
			return true
		}
		t.Fatalf("read the session: %v", err)
		return false
	})
	if provenAt.IsZero() {
		t.Fatalf("the session ended (seen %v after the cut) while the command (pid %d) was still there", ended.Sub(cut), pid)
	}
	t.Logf("after the cut: the command was gone by %v, the node still had the session at %v and had ended it by %v",
		gone.Sub(cut).Round(time.Millisecond), provenAt.Sub(cut).Round(time.Millisecond), ended.Sub(cut).Round(time.Millisecond))

	r := bg.exit(t, "cut off")
	exited := time.Since(cut)
	if r.code != 128+9 {
		t.Errorf("want the command's status 137 (SIGKILL), got %s", r)
	}
	for _, want := range []string{"lock job at risk", "lost lock job"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	// The session's deadline comes within a TTL of the cut; giving the
	// place up stops at the loss and ending the session takes --timeout.
	if bound := ttl + timeout + time.Second; exited > bound {
		t.Errorf("countctl exited %v after the cut, beyond TTL + --timeout + 1s = %v", exited, bound)
	}
	t.Logf("countctl exited %v after the cut; stderr:\n%s", exited.Round(time.Millisecond), r.stderr)
}

// TestLockCommandStaysStoppedWhenTheSessionRecovers: once the lock was at
// risk the command is stopped for good, even if a renew gets through
// while it is still stopping, and countctl says so.
func TestLockCommandStaysStoppedWhenTheSessionRecovers(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	g := newGate(t, n.URL)
	dir := t.TempDir()
	started, termed, goOn := filepath.Join(dir, "started"), filepath.Join(dir, "termed"), filepath.Join(dir, "go")
	// On SIGTERM the command says so and stays alive until the test lets
	// it go, so a renew can get through while it is stopping.
	script := fmt.Sprintf(`trap 'echo term > %[2]q; while [ ! -e %[3]q ]; do sleep 0.02; done; exit 3' TERM
echo "$$" > %[1]q
while :; do sleep 0.05; done`, started, termed, goOn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// TTL 3s, --grace 10s: SIGTERM 1s + 130ms before the deadline, SIGKILL
	// 130ms before it, unless a renew moves it.
	bg := startCtl(ctx, "-a", g.URL, "--timeout", "2s", "lock", "job", "--ttl", "3s", "--", "sh", "-c", script)
	waitFile(t, bg, started, "the command to start")
	cut := time.Now()
	g.cut.Store(true)
	waitFile(t, bg, termed, "SIGTERM to the command")
	termAt := time.Since(cut)
	before := g.renewed.Load()
	g.cut.Store(false)
	harness.WaitFor(t, 5*time.Second, "a renew to get through", func() bool { return g.renewed.Load() > before })
	if err := os.WriteFile(goOn, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := bg.exit(t, "recovered")
	if r.code != 3 {
		t.Errorf("want the command's status 3 (it stopped on SIGTERM after the renew), got %s", r)
	}
	if !strings.Contains(r.stderr, "lock job at risk") || !strings.Contains(r.stderr, "renewed after sh was told to stop") {
		t.Errorf("stderr does not say the lock was at risk and then renewed:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "lost lock") {
		t.Errorf("stderr says the lock was lost, but its session was renewed:\n%s", r.stderr)
	}
	t.Logf("SIGTERM %v after the cut; stderr:\n%s", termAt.Round(time.Millisecond), r.stderr)
	// It gave the place up and ended the session on its way out.
	q := ctl(t, n.URL, "-i", "job", "queue", "list", "-o", "text")
	if strings.Contains(q.stdout, "session-") {
		t.Errorf("the lock queue still holds the place: %s", q.stdout)
	}
}

// TestInterruptedLockExitsWhenTheClusterIsUnreachable: SIGINT while the
// cluster cannot be reached; giving the place up and ending the session
// must each stop after --timeout instead of retrying for ever.
func TestInterruptedLockExitsWhenTheClusterIsUnreachable(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	g := newGate(t, n.URL)
	started := filepath.Join(t.TempDir(), "started")
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	const timeout = time.Second
	bg := startCtl(ctx, "-a", g.URL, "--timeout", timeout.String(), "lock", "job", "--ttl", "30s", "--",
		"sh", "-c", `echo > '`+started+`'; exec sleep 600`)
	waitFile(t, bg, started, "the command to start")
	g.cut.Store(true)
	interrupted := time.Now()
	interrupt() // what SIGINT does to countctl
	r := bg.exit(t, "interrupted")
	took := time.Since(interrupted)
	if r.code != 128+15 {
		t.Errorf("want the command's status 143 (SIGTERM), got %s", r)
	}
	// Unlock and Close, each bounded by --timeout; the session (TTL 30s)
	// is not lost meanwhile.
	if bound := 2*timeout + time.Second; took > bound {
		t.Errorf("countctl exited %v after SIGINT, beyond 2×--timeout + 1s = %v", took, bound)
	}
	t.Logf("countctl exited %v after SIGINT with the cluster unreachable", took.Round(time.Millisecond))
}
