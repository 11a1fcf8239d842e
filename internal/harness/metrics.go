package harness

// Reading a node's GET /metrics the way Prometheus would: the text format,
// parsed by prometheus/common's own parser, so a malformed exposition fails
// the test rather than passing a substring check.

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one parsed scrape, by family name.
type Metrics map[string]*dto.MetricFamily

// ScrapeRaw fetches base+"/metrics" in the text format and returns the body,
// failing unless the answer is a 200 in text/plain.
func ScrapeRaw(tb testing.TB, base string) []byte {
	tb.Helper()
	c := *Probe // a scrape may take longer than a status
	c.Timeout = 10 * time.Second
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		tb.Fatalf("scrape %s/metrics: %v", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("scrape %s/metrics: read body: %v", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("scrape %s/metrics: HTTP %d %s", base, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		tb.Fatalf("scrape %s/metrics: Content-Type %q, want text/plain", base, ct)
	}
	return body
}

// Scrape fetches and parses base+"/metrics". Metric names must be valid in
// the classic (pre-UTF-8) scheme, which every Prometheus version accepts.
func Scrape(tb testing.TB, base string) Metrics {
	tb.Helper()
	body := ScrapeRaw(tb, base)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("parse %s/metrics: %v\n%s", base, err, body)
	}
	return fams
}

// Type is the family's type, failing when the family is absent.
func (m Metrics) Type(tb testing.TB, name string) dto.MetricType {
	tb.Helper()
	f, ok := m[name]
	if !ok {
		tb.Fatalf("no metric family %s; have %s", name, strings.Join(m.names(), ", "))
	}
	return f.GetType()
}

// Value is the value of the series of family name whose labels include
// every pair in labels (name, value, name, value, …): a counter's or
// gauge's value, a histogram's sample count. ok is false when no series
// matches.
func (m Metrics) Value(name string, labels ...string) (v float64, ok bool) {
	f := m[name]
	if f == nil {
		return 0, false
	}
	for _, s := range f.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue(), true
		case s.Gauge != nil:
			return s.Gauge.GetValue(), true
		case s.Histogram != nil:
			return float64(s.Histogram.GetSampleCount()), true
		case s.Untyped != nil:
			return s.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// MustValue is Value, failing when no series matches.
func (m Metrics) MustValue(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	v, ok := m.Value(name, labels...)
	if !ok {
		tb.Fatalf("no series %s%v in the scrape; families: %s", name, labels, strings.Join(m.names(), ", "))
	}
	return v
}

func hasLabels(s *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range s.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (m Metrics) names() []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
