package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
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

// exchange is one HTTP round trip the client made.
type exchange struct {
	method, url, key, body string
	status                 int
	replayed               string
}

// recorder is a RoundTripper that forwards to a real transport and records
// what went over the wire, so tests can see redirects being followed.
type recorder struct {
	rt  http.RoundTripper
	mu  sync.Mutex
	log []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := exchange{method: req.Method, url: req.URL.String(), key: req.Header.Get(api.HeaderIdempotencyKey)}
	if req.GetBody != nil {
		if b, err := req.GetBody(); err == nil {
			raw, _ := io.ReadAll(b)
			ex.body = string(raw)
		}
	}
	resp, err := r.rt.RoundTrip(req)
	if resp != nil {
		ex.status = resp.StatusCode
		ex.replayed = resp.Header.Get(api.HeaderReplayed)
	}
	r.mu.Lock()
	r.log = append(r.log, ex)
	r.mu.Unlock()
	return resp, err
}

// take returns and clears the recorded exchanges for method.
func (r *recorder) take(method string) []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []exchange
	for _, e := range r.log {
		if e.method == method {
			out = append(out, e)
		}
	}
	r.log = nil
	return out
}

func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestCluster(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	leader := harness.WaitStable(t, nodes)
	follower := harness.FollowersOf(nodes, leader)[0]

	t.Run("follows a redirect with the same body and key", func(t *testing.T) {
		rec := &recorder{rt: client.DefaultTransport()}
		viaFollower := func() *client.Client {
			return newClient(t, client.Config{Addrs: []string{follower.URL}, HTTPClient: &http.Client{Transport: rec}})
		}
		const key = "client-redirect-key"
		m1, err := viaFollower().Next(ctxFor(t, 10*time.Second), "cr", 2, client.WithIdempotencyKey(key))
		if err != nil {
			t.Fatalf("first Next: %v", err)
		}
		first := rec.take(http.MethodPost)
		m2, err := viaFollower().Next(ctxFor(t, 10*time.Second), "cr", 2, client.WithIdempotencyKey(key))
		if err != nil {
			t.Fatalf("second Next: %v", err)
		}
		second := rec.take(http.MethodPost)
		if *m1 != *m2 || m1.First != 1 || m1.Value != 2 {
			t.Errorf("the same key must return the same mint: %+v then %+v", *m1, *m2)
		}
		for i, ex := range [][]exchange{first, second} {
			if len(ex) != 2 || ex[0].status != http.StatusTemporaryRedirect || ex[1].status != http.StatusOK {
				t.Fatalf("call %d: want a 307 from the follower then a 200 from the leader, got %+v", i+1, ex)
			}
			if !strings.HasPrefix(ex[0].url, follower.URL) || ex[1].url != leader.URL+"/v1/counters/cr/next?count=2" {
				t.Errorf("call %d went %s then %s", i+1, ex[0].url, ex[1].url)
			}
			if ex[0].key != key || ex[1].key != key {
				t.Errorf("call %d: Idempotency-Key not carried over the redirect: %q, %q", i+1, ex[0].key, ex[1].key)
			}
		}
		if first[1].replayed != "" || second[1].replayed != "true" {
			t.Errorf("replayed headers: first %q, second %q", first[1].replayed, second[1].replayed)
		}
		c, err := viaFollower().Counter(ctxFor(t, 10*time.Second), "cr")
		if err != nil || c.Value != 2 {
			t.Errorf("minted once: want 2, got %+v, %v", c, err)
		}

		// A body survives the redirect too, and a write without an explicit
		// key gets one, the same on both hops.
		def := int64(10)
		a, err := viaFollower().Add(ctxFor(t, 10*time.Second), "cr-add", 5, &def)
		if err != nil || a.Value != 15 {
			t.Fatalf("Add via follower: %+v, %v", a, err)
		}
		ex := rec.take(http.MethodPost)
		if len(ex) != 2 || ex[1].status != 200 || ex[0].body != ex[1].body || !strings.Contains(ex[1].body, `"delta":5`) {
			t.Errorf("Add exchanges: %+v", ex)
		}
		if ex[0].key == "" || ex[0].key != ex[1].key {
			t.Errorf("automatic Idempotency-Key: %q then %q", ex[0].key, ex[1].key)
		}
		// Linearizable reads follow the redirect as well; stale ones don't.
		if _, err := viaFollower().Counter(ctxFor(t, 10*time.Second), "cr-add", client.Stale()); err != nil {
			t.Errorf("stale read on follower: %v", err)
		}
	})

	t.Run("backup and restore", func(t *testing.T) {
		rec := &recorder{rt: client.DefaultTransport()}
		viaFollower := func() *client.Client {
			return newClient(t, client.Config{Addrs: []string{follower.URL}, HTTPClient: &http.Client{Transport: rec}})
		}
		ctx := ctxFor(t, 20*time.Second)
		if _, err := viaFollower().Next(ctx, "bk", 10); err != nil {
			t.Fatal(err)
		}
		var file bytes.Buffer
		index, err := viaFollower().Backup(ctx, &file)
		if err != nil || index == 0 || !bytes.HasPrefix(file.Bytes(), []byte("COUNTD-BACKUP 1\n")) {
			t.Fatalf("Backup: index %d, %v, file %q", index, err, file.Bytes()[:min(file.Len(), 40)])
		}
		if ex := rec.take(http.MethodGet); len(ex) < 2 || ex[len(ex)-2].status != http.StatusTemporaryRedirect || ex[len(ex)-1].status != http.StatusOK {
			t.Errorf("a linearizable backup from a follower: want a 307 then a 200, got %+v", ex)
		}
		var stale bytes.Buffer
		if _, err := viaFollower().Backup(ctx, &stale, client.Stale()); err != nil || stale.Len() == 0 {
			t.Errorf("stale Backup from the follower: %v", err)
		}
		if ex := rec.take(http.MethodGet); len(ex) != 2 || ex[1].status != http.StatusOK || !strings.HasPrefix(ex[1].url, follower.URL) {
			t.Errorf("a stale backup is served by the follower itself: %+v", ex) // discovery, then the backup
		}

		if _, err := viaFollower().Next(ctx, "bk", 5); err != nil {
			t.Fatal(err)
		}
		rec.take(http.MethodPost)
		res, err := viaFollower().Restore(ctx, file.Bytes(), client.RestoreOptions{Advance: 100})
		if err != nil || res.Advanced != 100 || res.BackupIndex != index || res.Forced {
			t.Fatalf("Restore: %+v, %v", res, err)
		}
		// The whole file went to the follower, which redirected, and again
		// to the leader, with one key.
		ex := rec.take(http.MethodPost)
		if len(ex) != 2 || ex[0].status != http.StatusTemporaryRedirect || ex[1].status != http.StatusOK ||
			ex[0].body != file.String() || ex[1].body != file.String() || ex[0].key == "" || ex[0].key != ex[1].key {
			t.Errorf("Restore exchanges: %d, statuses %v", len(ex), func() (st []int) {
				for _, e := range ex {
					st = append(st, e.status)
				}
				return st
			}())
		}
		if c, err := viaFollower().Counter(ctx, "bk"); err != nil || c.Value != 115 {
			t.Errorf("bk after a merge with advance 100: %+v, %v; want 115", c, err)
		}
		_, err = viaFollower().Restore(ctx, file.Bytes()[:file.Len()-1], client.RestoreOptions{})
		if !client.IsCode(err, api.CodeBadRequest) {
			t.Errorf("Restore of a truncated file: %v", err)
		}

		// A transfer that breaks once the file has begun is not retried:
		// another attempt would write its start again.
		direct := newClient(t, client.Config{Addrs: []string{leader.URL}, HTTPClient: &http.Client{Transport: rec}})
		if _, err := direct.Cluster(ctx); err != nil {
			t.Fatal(err)
		}
		rec.take(http.MethodGet)
		if _, err := direct.Backup(ctx, failingWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("Backup into a failing writer: %v", err)
		}
		if ex := rec.take(http.MethodGet); len(ex) != 1 {
			t.Errorf("a broken backup was retried: %+v", ex)
		}
	})

	t.Run("with DiscoverOnFailover asks for the nodes only to fail over", func(t *testing.T) {
		rec := &recorder{rt: client.DefaultTransport()}
		lazy := func(addrs ...string) *client.Client {
			return newClient(t, client.Config{Addrs: addrs, HTTPClient: &http.Client{Transport: rec}, DiscoverOnFailover: true})
		}
		ctx := ctxFor(t, 10*time.Second)
		c := lazy(follower.URL)
		if _, err := c.Counter(ctx, "lazy", client.Stale()); err != nil {
			t.Fatal(err)
		}
		if ex := rec.take(http.MethodGet); len(ex) != 1 || ex[0].url != follower.URL+"/v1/counters/lazy?consistency=stale" {
			t.Errorf("a request that works is all that is sent: %+v", ex)
		}
		dead := harness.DeadAddr(t)
		c = lazy(dead, follower.URL)
		if _, err := c.Counter(ctx, "lazy", client.Stale()); err != nil {
			t.Fatal(err)
		}
		ex := rec.take(http.MethodGet)
		var asked int
		for _, e := range ex {
			if strings.HasSuffix(e.url, "/v1/cluster") && e.status == http.StatusOK {
				asked++
			}
		}
		if len(ex) == 0 || !strings.HasPrefix(ex[0].url, dead) || ex[0].status != 0 || asked != 1 {
			t.Errorf("want the failed read, then one GET /v1/cluster that answers: %+v", ex)
		}
		if got := len(c.Nodes()); got != len(nodes)+1 {
			t.Errorf("failing over learned %v", c.Nodes())
		}
	})

	t.Run("discovers nodes and survives losing the only address", func(t *testing.T) {
		c := newClient(t, client.Config{Addrs: []string{leader.URL}})
		m, err := c.Next(ctxFor(t, 10*time.Second), "disc", 1)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		var want []string
		for _, n := range nodes {
			want = append(want, n.URL)
		}
		got := c.Nodes()
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("discovered nodes: want %v, got %v", want, got)
		}
		if c.ClusterName() != "countd" {
			t.Errorf("ClusterName: %q", c.ClusterName())
		}
		leader.Stop()
		for i := 0; i < 3; i++ {
			m2, err := c.Next(ctxFor(t, 15*time.Second), "disc", 1)
			if err != nil {
				t.Fatalf("Next after the only configured node stopped: %v", err)
			}
			if m2.First <= m.First {
				t.Errorf("minted %d after %d", m2.First, m.First)
			}
			m = m2
		}
		if c, err := c.Counter(ctxFor(t, 15*time.Second), "disc"); err != nil || c.Value != m.Value {
			t.Errorf("read after failover: %+v, %v", c, err)
		}
	})
}

func TestRetriesPastDeadAddress(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	var retries atomic.Int32
	c := newClient(t, client.Config{
		Addrs:   []string{harness.DeadAddr(t), n.URL},
		OnRetry: func(client.RetryInfo) { retries.Add(1) },
	})
	m, err := c.Next(ctxFor(t, 10*time.Second), "dead-first", 3)
	if err != nil {
		t.Fatalf("Next with a dead first address: %v", err)
	}
	if m.First != 1 || m.Value != 3 || m.Count != 3 || m.Step != 1 {
		t.Errorf("mint: %+v", m)
	}
	if retries.Load() < 1 {
		t.Errorf("expected at least one retry past the dead address")
	}
	if _, err := c.Counter(ctxFor(t, 10*time.Second), "dead-first"); err != nil {
		t.Errorf("read: %v", err)
	}
}

// attemptCounter is a RoundTripper that counts the attempts a client
// makes and notes any it starts after its context has ended.
type attemptCounter struct {
	rt       http.RoundTripper
	attempts atomic.Int32
	late     atomic.Int32
}

func (a *attemptCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	a.attempts.Add(1)
	if req.Context().Err() != nil {
		a.late.Add(1)
	}
	return a.rt.RoundTrip(req)
}

// within runs call and fails the test if it has not returned after a
// generous bound: a guard against a hang, not a measure of speed.
func within(t *testing.T, what string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

// TestGivesUpAtDeadline: the client retries until its context ends, then
// stops. Attempts are counted, not timed.
func TestGivesUpAtDeadline(t *testing.T) {
	const deadline = 600 * time.Millisecond

	t.Run("refused connections", func(t *testing.T) {
		d1, d2 := harness.DeadAddr(t), harness.DeadAddr(t)
		rt := &attemptCounter{rt: client.DefaultTransport()}
		var retries atomic.Int32
		c := newClient(t, client.Config{Addrs: []string{d1, d2}, HTTPClient: &http.Client{Transport: rt},
			OnRetry: func(client.RetryInfo) { retries.Add(1) }})
		ctx := ctxFor(t, deadline)
		err := within(t, "Next against dead nodes", func() error {
			_, err := c.Next(ctx, "x", 1)
			return err
		})
		if err == nil {
			t.Fatal("Next against dead nodes succeeded")
		}
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() == nil {
			t.Errorf("it must give up only when its deadline has passed: %v (context: %v)", err, ctx.Err())
		}
		if msg := err.Error(); !strings.Contains(msg, "connection refused") || (!strings.Contains(msg, d1) && !strings.Contains(msg, d2)) {
			t.Errorf("error should name the last cause and node: %v", err)
		}
		// It kept retrying until the deadline: more than one request went
		// out, each failure told OnRetry but the last one, cut short by the
		// deadline.
		n := rt.attempts.Load()
		if n < 2 || retries.Load() < 1 {
			t.Errorf("%d attempts, %d retries: want it to go on retrying until the deadline", n, retries.Load())
		}
		if late := rt.late.Load(); late != 0 {
			t.Errorf("%d of %d attempts started after the deadline", late, n)
		}
		if again := rt.attempts.Load(); again != n {
			t.Errorf("attempts went on after Next returned: %d, then %d", n, again)
		}
	})

	t.Run("a node that never answers", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var conns []net.Conn
		var mu sync.Mutex
		go func() {
			for {
				cn, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, cn) // hold it open, never answer
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			_ = ln.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, cn := range conns {
				_ = cn.Close()
			}
		})
		hung := "http://" + ln.Addr().String()
		// Attempts may take an hour: only the caller's deadline can end
		// this call in time, so its returning proves the deadline reaches
		// the attempt that hangs.
		c := newClient(t, client.Config{Addrs: []string{hung}, AttemptTimeout: time.Hour})
		ctx := ctxFor(t, deadline)
		err = within(t, "a read from a node that never answers", func() error {
			_, err := c.Counter(ctx, "x")
			return err
		})
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), hung) {
			t.Errorf("want a deadline error naming %s, got %v", hung, err)
		}
		if ctx.Err() == nil {
			t.Error("it gave up before its deadline")
		}
	})
}

func TestErrors(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	rec := &recorder{rt: client.DefaultTransport()}
	c := newClient(t, client.Config{Addrs: []string{n.URL}, HTTPClient: &http.Client{Transport: rec}})
	ctx := ctxFor(t, 10*time.Second)
	v, other := int64(3), int64(4)
	if _, err := c.Set(ctx, "cas", api.SetRequest{Value: &v}); err != nil {
		t.Fatal(err)
	}
	rec.take(http.MethodPut)
	five := int64(5)
	_, err := c.Set(ctx, "cas", api.SetRequest{Value: &five, IfValue: &other})
	if puts := rec.take(http.MethodPut); len(puts) != 1 || puts[0].status != http.StatusConflict {
		t.Errorf("a 409 must not be retried: %+v", puts)
	}
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *client.Error, got %T %v", err, err)
	}
	if ce.Status != 409 || ce.Code != api.CodeConflict || ce.Message == "" {
		t.Errorf("conflict error: %+v", ce)
	}
	if ce.Current == nil || ce.Current.ID != "cas" || ce.Current.Value != 3 || ce.Current.Increment != 1 || ce.Current.Index == 0 {
		t.Errorf("Current: %+v", ce.Current)
	}
	if !client.IsCode(err, api.CodeConflict) || !client.IsCode(fmt.Errorf("wrapped: %w", err), api.CodeConflict) {
		t.Error("IsCode(conflict) is false")
	}
	if client.IsCode(err, api.CodeNotFound) || client.IsCode(errors.New("conflict"), api.CodeConflict) || client.IsCode(nil, api.CodeConflict) {
		t.Error("IsCode matched the wrong thing")
	}

	_, err = c.Counter(ctx, "a b")
	if !client.IsCode(err, api.CodeInvalidName) || !errors.As(err, &ce) || ce.Status != 400 {
		t.Errorf("invalid name: %v", err)
	}
	_, err = c.Next(ctx, "n", 0)
	if !client.IsCode(err, api.CodeBadRequest) {
		t.Errorf("count 0: %v", err)
	}
	tr := true
	if _, err := c.Set(ctx, "mono", api.SetRequest{Value: &v, Monotonic: &tr}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteCounter(ctx, "mono", false); !client.IsCode(err, api.CodeNotMonotonic) {
		t.Errorf("delete monotonic: %v", err)
	}
	if err := c.DeleteCounter(ctx, "mono", true); err != nil {
		t.Errorf("forced delete: %v", err)
	}
	if _, err := c.Add(ctx, "mono", 1, nil, client.WithIdempotencyKey(strings.Repeat("k", 129))); !client.IsCode(err, api.CodeBadRequest) {
		t.Errorf("a 129-byte key: want bad_request, got %v", err)
	}
}

// TestInvalidKeyFailsFast: a key with a control byte cannot even be sent
// (net/http refuses the header). That is neither a 503 nor a connection
// error (SPEC §2: the only things retried), so the call must fail at once
// instead of retrying the same unsendable request until the deadline.
func TestInvalidKeyFailsFast(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	rt := &attemptCounter{rt: client.DefaultTransport()}
	c := newClient(t, client.Config{Addrs: []string{n.URL}, HTTPClient: &http.Client{Transport: rt}})
	_, err := c.Add(ctxFor(t, 3*time.Second), "k", 1, nil, client.WithIdempotencyKey("bad\x01key"))
	if err == nil {
		t.Fatal("a key with a control byte was accepted")
	}
	if !client.IsCode(err, api.CodeBadRequest) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("want bad_request at once, got %v", err)
	}
	if n := rt.attempts.Load(); n != 0 {
		t.Errorf("an unsendable request was tried %d times", n)
	}
	if c, err := c.Counter(ctxFor(t, 3*time.Second), "k"); err != nil || c.Value != 0 {
		t.Errorf("counter k: %+v, %v", c, err)
	}
}

func TestTypedCalls(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	c := newClient(t, client.Config{Addrs: []string{strings.TrimPrefix(n.URL, "http://")}}) // host:port is accepted
	ctx := ctxFor(t, 10*time.Second)
	inc, off := int64(2), int64(1)
	got, err := c.Set(ctx, "tc-odd", api.SetRequest{Increment: &inc, Offset: &off})
	if err != nil || *got != (api.Counter{ID: "tc-odd", Increment: 2, Offset: 1, Index: got.Index}) {
		t.Fatalf("Set: %+v, %v", got, err)
	}
	m, err := c.Next(ctx, "tc-odd", 3)
	if err != nil || *m != (api.Mint{ID: "tc-odd", First: 1, Value: 5, Count: 3, Step: 2, Index: m.Index}) {
		t.Errorf("Next: %+v, %v", m, err)
	}
	def := int64(10)
	a, err := c.Add(ctx, "tc-add", 5, &def)
	if err != nil || a.Value != 15 || a.ID != "tc-add" {
		t.Errorf("Add: %+v, %v", a, err)
	}
	list, err := c.Counters(ctx, "tc-")
	if err != nil || len(list) != 2 || list[0].ID != "tc-add" || list[1].ID != "tc-odd" {
		t.Errorf("Counters: %+v, %v", list, err)
	}
	ctr, err := c.Counter(ctx, "tc-odd", client.Stale())
	if err != nil || ctr.Value != 5 {
		t.Errorf("stale Counter: %+v, %v", ctr, err)
	}
	if err := c.DeleteCounter(ctx, "tc-add", false); err != nil {
		t.Errorf("DeleteCounter: %v", err)
	}
	st, err := c.Cluster(ctx)
	if err != nil || st.Name != "countd" || len(st.Members) != 1 {
		t.Errorf("Cluster: %+v, %v", st, err)
	}
	if _, err := client.New(client.Config{}); err == nil {
		t.Error("New without addresses must fail")
	}
	if _, err := client.New(client.Config{Addrs: []string{"ftp://x"}}); err == nil {
		t.Error("New with a non-HTTP address must fail")
	}
}

// failingWriter refuses every write, as a full disk would.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
