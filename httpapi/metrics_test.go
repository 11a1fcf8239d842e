package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

// nextRoute is the route template the HTTP metrics label counter next with.
const nextRoute = "/v1/counters/:id/next"

func TestMetricsOnOneNode(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	before := harness.Scrape(t, n.URL)

	for name, typ := range map[string]dto.MetricType{
		"countd_raft_state":                    dto.MetricType_GAUGE,
		"countd_raft_term":                     dto.MetricType_GAUGE,
		"countd_raft_commit_index":             dto.MetricType_GAUGE,
		"countd_raft_applied_index":            dto.MetricType_GAUGE,
		"countd_fsm_applied_index":             dto.MetricType_GAUGE,
		"countd_raft_last_log_index":           dto.MetricType_GAUGE,
		"countd_raft_last_contact_seconds":     dto.MetricType_GAUGE,
		"countd_raft_voters":                   dto.MetricType_GAUGE,
		"countd_is_leader":                     dto.MetricType_GAUGE,
		"countd_fsm_apply_duration_seconds":    dto.MetricType_HISTOGRAM,
		"countd_minted_ids_total":              dto.MetricType_COUNTER,
		"countd_applied_minted_ids_total":      dto.MetricType_COUNTER,
		"countd_sessions_expired_total":        dto.MetricType_COUNTER,
		"countd_sessions":                      dto.MetricType_GAUGE,
		"countd_apply_duration_seconds":        dto.MetricType_HISTOGRAM,
		"countd_http_requests_total":           dto.MetricType_COUNTER,
		"countd_http_request_duration_seconds": dto.MetricType_HISTOGRAM,
	} {
		// The HTTP families appear with their first request: the scrape
		// that follows the first one has them.
		if name == "countd_http_requests_total" || name == "countd_http_request_duration_seconds" {
			continue
		}
		if got := before.Type(t, name); got != typ {
			t.Errorf("%s: type %s, want %s", name, got, typ)
		}
	}
	minted0 := before.MustValue(t, "countd_minted_ids_total")
	applied0 := before.MustValue(t, "countd_applied_minted_ids_total")

	wantOK(t, sendJSON(t, http.MethodPost, n.URL+"/v1/counters/m/next?count=5", ""), 200)
	r := sendJSON(t, http.MethodPost, n.URL+"/v1/counters/m/next", "")
	wantOK(t, r, 200)
	lastIndex := indexOf(t, r)
	// A replay mints nothing new, nor does a refused write.
	key := []string{"Idempotency-Key", "metrics-replay"}
	wantOK(t, sendJSON(t, http.MethodPost, n.URL+"/v1/counters/r/next?count=3", "", key...), 200)
	wantOK(t, sendJSON(t, http.MethodPost, n.URL+"/v1/counters/r/next?count=3", "", key...), 200)
	checkError(t, sendJSON(t, http.MethodPost, n.URL+"/v1/counters/m/next?count=0", ""), http.StatusBadRequest, "bad_request")
	sendJSON(t, http.MethodGet, n.URL+"/no/such/path", "")
	if r := sendJSON(t, "BREW", n.URL+"/v1/counters/m", ""); r.status != http.StatusMethodNotAllowed {
		t.Errorf("BREW on a counter: %s, want 405", r)
	}

	m := harness.Scrape(t, n.URL)
	if got := m.MustValue(t, "countd_minted_ids_total") - minted0; got != 5+1+3 {
		t.Errorf("countd_minted_ids_total moved by %v, want 9 (5 + 1 + 3, the replay minting nothing)", got)
	}
	if got := m.MustValue(t, "countd_applied_minted_ids_total") - applied0; got != 5+1+3 {
		t.Errorf("countd_applied_minted_ids_total moved by %v, want 9", got)
	}
	for _, tc := range []struct {
		method, route, code string
		want                float64
	}{
		{"POST", nextRoute, "200", 4},
		{"POST", nextRoute, "400", 1},
		{"GET", "unmatched", "404", 1},
		{"other", "unmatched", "405", 1}, // an unknown method is not a label value
	} {
		labels := []string{"method", tc.method, "route", tc.route, "code", tc.code}
		if got := m.MustValue(t, "countd_http_requests_total", labels...); got != tc.want {
			t.Errorf("countd_http_requests_total%v = %v, want %v", labels, got, tc.want)
		}
		if got := m.MustValue(t, "countd_http_request_duration_seconds", labels...); got != tc.want {
			t.Errorf("countd_http_request_duration_seconds%v has %v samples, want %v", labels, got, tc.want)
		}
	}
	if m.Type(t, "countd_http_requests_total") != dto.MetricType_COUNTER ||
		m.Type(t, "countd_http_request_duration_seconds") != dto.MetricType_HISTOGRAM {
		t.Errorf("HTTP metric types: %s, %s", m.Type(t, "countd_http_requests_total"), m.Type(t, "countd_http_request_duration_seconds"))
	}

	if term := m.MustValue(t, "countd_raft_term"); term < 1 {
		t.Errorf("countd_raft_term = %v, want ≥ 1", term)
	}
	for name, want := range map[string]float64{
		"countd_is_leader":                 1,
		"countd_raft_voters":               1,
		"countd_raft_last_contact_seconds": 0,
	} {
		if got := m.MustValue(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for state, want := range map[string]float64{"leader": 1, "follower": 0, "candidate": 0, "shutdown": 0} {
		if got := m.MustValue(t, "countd_raft_state", "state", state); got != want {
			t.Errorf("countd_raft_state{state=%q} = %v, want %v", state, got, want)
		}
	}
	for _, name := range []string{"countd_raft_commit_index", "countd_raft_applied_index", "countd_fsm_applied_index", "countd_raft_last_log_index"} {
		if got := m.MustValue(t, name); got < float64(lastIndex) {
			t.Errorf("%s = %v, below the last write's index %d", name, got, lastIndex)
		}
	}
	if got := m.MustValue(t, "countd_apply_duration_seconds", "outcome", "ok"); got < 4 {
		t.Errorf("countd_apply_duration_seconds{outcome=ok} has %v samples, want ≥ 4", got)
	}
	if got := m.MustValue(t, "countd_fsm_apply_duration_seconds"); got < 1 {
		t.Errorf("countd_fsm_apply_duration_seconds has %v samples, want ≥ 1", got)
	}
}

func TestMetricsOnAFollower(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	leader := harness.WaitStable(t, nodes)
	follower := harness.FollowersOf(nodes, leader)[0]

	checkRedirect(t, sendJSON(t, http.MethodPost, follower.URL+"/v1/counters/f/next", ""), leader, "/v1/counters/f/next")
	m := harness.Scrape(t, follower.URL)
	labels := []string{"method", "POST", "route", nextRoute, "code", "307"}
	if got := m.MustValue(t, "countd_http_requests_total", labels...); got != 1 {
		t.Errorf("follower's countd_http_requests_total%v = %v, want 1", labels, got)
	}
	if _, ok := m.Value("countd_http_requests_total", "code", "200", "route", nextRoute); ok {
		t.Errorf("follower counted a 200 for a write it redirected")
	}
	if got := m.MustValue(t, "countd_apply_duration_seconds", "outcome", "error"); got != 1 {
		t.Errorf("follower's countd_apply_duration_seconds{outcome=error} has %v samples, want 1", got)
	}
	for name, want := range map[string]float64{"countd_is_leader": 0, "countd_raft_voters": 3, "countd_minted_ids_total": 0} {
		if got := m.MustValue(t, name); got != want {
			t.Errorf("follower's %s = %v, want %v", name, got, want)
		}
	}
	if got := m.MustValue(t, "countd_raft_state", "state", "follower"); got != 1 {
		t.Errorf("follower's countd_raft_state{state=follower} = %v", got)
	}
	if got := m.MustValue(t, "countd_raft_last_contact_seconds"); got < 0 || got > 10 {
		t.Errorf("follower's countd_raft_last_contact_seconds = %v, want a recent contact", got)
	}
	if got := m.MustValue(t, "countd_raft_term"); got < 1 {
		t.Errorf("follower's countd_raft_term = %v", got)
	}
}

// TestMetricsSharedRegistry runs two servers on one registry, as an
// embedding program might: they share the HTTP metrics instead of panicking
// as duplicates, and the registry serves what the caller registered.
func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := harness.StartInMemWith(t, cluster.Config{NodeID: "a"}, httpapi.Config{Metrics: reg})
	reg.MustRegister(a.Node.Collector())
	b := harness.StartInMemWith(t, cluster.Config{NodeID: "b"}, httpapi.Config{Metrics: reg})
	wantOK(t, sendJSON(t, http.MethodPost, a.URL+"/v1/counters/s/next", ""), 200)
	wantOK(t, sendJSON(t, http.MethodPost, b.URL+"/v1/counters/s/next", ""), 200)

	m := harness.Scrape(t, b.URL)
	if got := m.MustValue(t, "countd_http_requests_total", "route", nextRoute, "code", "200"); got != 2 {
		t.Errorf("shared countd_http_requests_total = %v, want 2 (one request on each server)", got)
	}
	// Only a's collector was registered, so only a's mint is reported.
	if got := m.MustValue(t, "countd_minted_ids_total"); got != 1 {
		t.Errorf("countd_minted_ids_total = %v, want 1", got)
	}
}
