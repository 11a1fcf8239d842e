package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/countd/countd/internal/harness"
)

// requirePromtool returns the path of promtool (from the Debian package
// prometheus), skipping the test when it is missing; with
// COUNTD_REQUIRE_PROMTOOL=1, which `make unit` always sets (`make deps`
// installs it), a missing promtool fails instead.
func requirePromtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		msg := fmt.Sprintf("promtool is not installed: %v (install the Debian package prometheus)", err)
		if os.Getenv("COUNTD_REQUIRE_PROMTOOL") == "1" {
			t.Fatal(msg + "; COUNTD_REQUIRE_PROMTOOL=1 forbids skipping")
		}
		t.Skip(msg)
	}
	return path
}

// post sends a body-less POST to one node and returns the status.
func post(t *testing.T, url string) int {
	t.Helper()
	resp, err := harness.Probe.Post(url, "", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMetricsEndpoint scrapes a real countd process's GET /metrics after
// some writes, parses it with Prometheus's own parser, and checks it with
// promtool's linter when promtool is there.
func TestMetricsEndpoint(t *testing.T) {
	c := newCluster(t, 1, false)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	n := c.MustWaitConverged(t, c.Nodes, 1, 30*time.Second)

	for _, q := range []string{"?count=5", ""} {
		if code := post(t, n.URL()+"/v1/counters/e2e/next"+q); code != http.StatusOK {
			t.Fatalf("POST next%s: HTTP %d", q, code)
		}
	}
	m := harness.Scrape(t, n.URL())
	for name, typ := range map[string]dto.MetricType{
		"countd_raft_term":                     dto.MetricType_GAUGE,
		"countd_is_leader":                     dto.MetricType_GAUGE,
		"countd_minted_ids_total":              dto.MetricType_COUNTER,
		"countd_fsm_apply_duration_seconds":    dto.MetricType_HISTOGRAM,
		"countd_apply_duration_seconds":        dto.MetricType_HISTOGRAM,
		"countd_http_requests_total":           dto.MetricType_COUNTER,
		"countd_http_request_duration_seconds": dto.MetricType_HISTOGRAM,
		// The daemon adds the Go runtime and process collectors.
		"go_goroutines":              dto.MetricType_GAUGE,
		"process_start_time_seconds": dto.MetricType_GAUGE,
	} {
		if got := m.Type(t, name); got != typ {
			t.Errorf("%s: type %s, want %s", name, got, typ)
		}
	}
	if got := m.MustValue(t, "countd_minted_ids_total"); got != 6 {
		t.Errorf("countd_minted_ids_total = %v after minting 5 and 1, want 6", got)
	}
	if got := m.MustValue(t, "countd_http_requests_total", "method", "POST", "route", "/v1/counters/:id/next", "code", "200"); got != 2 {
		t.Errorf("countd_http_requests_total for next = %v, want 2", got)
	}
	if got := m.MustValue(t, "countd_is_leader"); got != 1 {
		t.Errorf("countd_is_leader = %v on the only node", got)
	}

	promtool := requirePromtool(t)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(harness.ScrapeRaw(t, n.URL()))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
