package client_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

// sessionServer is a stand-in for the cluster that only creates and
// renews sessions. cut makes every renew fail as if the network were
// down (the connection is dropped), so a test decides exactly when
// renewing stops working; end makes renews answer 404.
type sessionServer struct {
	*httptest.Server
	cut, ended atomic.Bool

	mu     sync.Mutex
	renews []time.Time // when each successful renew arrived
}

func newSessionServer(t *testing.T) *sessionServer {
	s := &sessionServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/sessions":
			writeSession(w, "s1")
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/renew"):
			if s.cut.Load() {
				if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
					_ = c.Close()
				}
				return
			}
			if s.ended.Load() {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				_ = json.NewEncoder(w).Encode(api.Error{Code: api.CodeNotFound, Error: "session ended"})
				return
			}
			s.mu.Lock()
			s.renews = append(s.renews, time.Now())
			s.mu.Unlock()
			writeSession(w, "s1")
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			// Discovery (/v1/cluster) included: the client keeps to this
			// server.
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func writeSession(w http.ResponseWriter, id string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(api.HeaderIndex, "1")
	_ = json.NewEncoder(w).Encode(api.Session{ID: id, TTL: "1s", Index: 1})
}

func (s *sessionServer) renewCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.renews)
}

func fired(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitClosed waits for ch and returns when it saw it closed.
func waitClosed(t *testing.T, ch <-chan struct{}, what string, timeout time.Duration) time.Time {
	t.Helper()
	select {
	case <-ch:
		return time.Now()
	case <-time.After(timeout):
		t.Fatalf("%s: not closed within %v", what, timeout)
		return time.Time{}
	}
}

func TestKeptSessionDeadlineMovesWithEachRenew(t *testing.T) {
	srv := newSessionServer(t)
	c := newClient(t, client.Config{Addrs: []string{srv.URL}})
	const ttl = 900 * time.Millisecond
	before := time.Now()
	ks, err := c.KeepSession(ctxFor(t, 10*time.Second), ttl, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close(ctxFor(t, 5*time.Second))
	first := ks.Deadline()
	// Counted from when the create was sent, not from its answer.
	if first.Before(before.Add(ttl)) || first.After(time.Now().Add(ttl)) {
		t.Fatalf("the first deadline %v is not a TTL after the create was sent (%v…%v)", first, before.Add(ttl), time.Now().Add(ttl))
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.renewCount() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the session was not renewed twice within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The deadline is a TTL after the renew's send, which precedes its
	// arrival at the server.
	srv.mu.Lock()
	second := srv.renews[1]
	srv.mu.Unlock()
	if d := ks.Deadline(); !d.After(first) || d.After(second.Add(ttl)) {
		t.Fatalf("after two renews the deadline is %v: want after the first %v and at most a TTL after the second renew arrived (%v)", d, first, second.Add(ttl))
	}
}

// TestAtRiskClosesBeforeTheSessionIsLost cuts renewing off: AtRisk(lead)
// must close lead before the deadline (not sooner, not much later), and
// Done only at the deadline; while renewing works it must stay open.
func TestAtRiskClosesBeforeTheSessionIsLost(t *testing.T) {
	srv := newSessionServer(t)
	c := newClient(t, client.Config{Addrs: []string{srv.URL}})
	const (
		ttl  = 900 * time.Millisecond
		lead = ttl / 3 // what countctl lock uses at most, plus a margin
	)
	ks, err := c.KeepSession(ctxFor(t, 10*time.Second), ttl, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close(ctxFor(t, 5*time.Second))
	risk := ks.AtRisk(lead)
	// Healthy: three TTLs of renews every TTL/3 never come within lead.
	healthy := time.Now().Add(3 * ttl)
	for time.Now().Before(healthy) {
		if fired(risk) {
			t.Fatalf("AtRisk(%v) closed while renewing worked (deadline %v away)", lead, time.Until(ks.Deadline()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.renewCount(); n < 6 {
		t.Fatalf("only %d renews in %v", n, 3*ttl)
	}

	srv.cut.Store(true)
	riskAt := waitClosed(t, risk, "AtRisk", 2*ttl)
	// No renew has got through since the cut (one sent just before it
	// may have), so the deadline stays where it is from here on.
	deadline := ks.Deadline()
	if want := deadline.Add(-lead); riskAt.Before(want) || riskAt.After(want.Add(100*time.Millisecond)) {
		t.Errorf("AtRisk(%v) closed at deadline%+v, want at deadline-%v (within 100ms)", lead, riskAt.Sub(deadline), lead)
	}
	if fired(ks.Done()) {
		t.Fatal("the session counted as lost at AtRisk's time, before its deadline")
	}
	lostAt := waitClosed(t, ks.Done(), "Done", 2*ttl)
	if lostAt.Before(deadline) || lostAt.After(deadline.Add(100*time.Millisecond)) {
		t.Errorf("the session was lost at deadline%+v, want at its deadline (within 100ms)", lostAt.Sub(deadline))
	}
	if !errors.Is(ks.Err(), client.ErrSessionLost) {
		t.Errorf("Err = %v, want ErrSessionLost", ks.Err())
	}
	if !ks.Deadline().Equal(deadline) {
		t.Errorf("the deadline moved from %v to %v without a renew", deadline, ks.Deadline())
	}
	// Lost: a new AtRisk is closed at once, since its deadline is past.
	if !fired(ks.AtRisk(0)) {
		t.Error("AtRisk of a session past its deadline is not closed")
	}
}

// TestAtRiskStaysClosedAfterARenew: a session that was at risk and was
// then renewed keeps its old channel closed; a new one follows the new
// deadline.
func TestAtRiskStaysClosedAfterARenew(t *testing.T) {
	srv := newSessionServer(t)
	c := newClient(t, client.Config{Addrs: []string{srv.URL}})
	const ttl = 1200 * time.Millisecond
	ks, err := c.KeepSession(ctxFor(t, 10*time.Second), ttl, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close(ctxFor(t, 5*time.Second))
	// A lead of almost 2·TTL/3: one renew that cannot get through for a
	// little while puts the session at risk.
	const lead = 2*ttl/3 - 100*time.Millisecond
	risk := ks.AtRisk(lead)
	srv.cut.Store(true)
	waitClosed(t, risk, "AtRisk", 2*ttl)
	atRisk := ks.Deadline()
	srv.cut.Store(false)
	deadline := time.Now().Add(ttl)
	for !ks.Deadline().After(atRisk) {
		if time.Now().After(deadline) || fired(ks.Done()) {
			t.Fatalf("no renew got through after the cut was healed (lost: %v)", ks.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !fired(risk) {
		t.Fatal("the AtRisk channel reopened") // cannot happen: a closed channel stays closed
	}
	if fresh := ks.AtRisk(lead); fired(fresh) {
		t.Errorf("a new AtRisk(%v) is closed although the session was just renewed (deadline in %v)", lead, time.Until(ks.Deadline()))
	}
	if fired(ks.Done()) {
		t.Errorf("the session was lost: %v", ks.Err())
	}
}

// TestAtRiskWithALongLeadClosesAtOnce: a lead beyond the time left
// closes the channel at once; a lead of zero closes it at the deadline.
func TestAtRiskWithALongLeadClosesAtOnce(t *testing.T) {
	srv := newSessionServer(t)
	c := newClient(t, client.Config{Addrs: []string{srv.URL}})
	ks, err := c.KeepSession(ctxFor(t, 10*time.Second), 3*time.Second, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close(ctxFor(t, 5*time.Second))
	if !fired(ks.AtRisk(4 * time.Second)) {
		t.Error("AtRisk(4s) of a session with a 3s TTL is not closed at once")
	}
	if fired(ks.AtRisk(0)) {
		t.Error("AtRisk(0) of a fresh session is closed")
	}
}

// TestSessionEndedByTheClusterClosesDoneNotAtRisk: a renew answered 404
// loses the session at once (Done, as before); AtRisk keeps to the
// deadline, which stops moving.
func TestSessionEndedByTheClusterClosesDoneNotAtRisk(t *testing.T) {
	srv := newSessionServer(t)
	c := newClient(t, client.Config{Addrs: []string{srv.URL}})
	const ttl = 1500 * time.Millisecond
	ks, err := c.KeepSession(ctxFor(t, 10*time.Second), ttl, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close(ctxFor(t, 5*time.Second))
	risk := ks.AtRisk(ttl / 3)
	srv.ended.Store(true)
	lostAt := waitClosed(t, ks.Done(), "Done", 2*ttl)
	if !errors.Is(ks.Err(), client.ErrSessionLost) || !strings.Contains(ks.Err().Error(), "ended") {
		t.Errorf("Err = %v, want ErrSessionLost saying it ended", ks.Err())
	}
	deadline := ks.Deadline()
	if !lostAt.Before(deadline.Add(-ttl / 3)) {
		t.Fatalf("the 404 was seen only at deadline%+v", lostAt.Sub(deadline))
	}
	if fired(risk) {
		t.Error("AtRisk closed on the 404, before its time")
	}
	riskAt := waitClosed(t, risk, "AtRisk", 2*ttl)
	if want := deadline.Add(-ttl / 3); riskAt.Before(want) || riskAt.After(want.Add(100*time.Millisecond)) {
		t.Errorf("AtRisk closed at deadline%+v, want at deadline-%v", riskAt.Sub(deadline), ttl/3)
	}
}
