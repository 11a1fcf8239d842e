package httpapi

// HTTP request metrics and the GET /metrics endpoint.
//
// The middleware is hand-written rather than taken from echo-contrib's
// echoprometheus because that one counts a handler's returned error as 500
// (or an echo.HTTPError's code) before countd's error handler has turned it
// into its real status: every 307 redirect and 409 would be miscounted. Here
// the error is rendered first and the status written is what is counted.

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/countd/countd/cluster"
)

// collectorNode is a Node that also has Prometheus metrics of its own;
// *cluster.Node is one. The server registers them only in a registry it
// created itself (see Config.Metrics).
type collectorNode interface {
	Collector() prometheus.Collector
}

// httpMetrics are the per-request metrics.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// route reports whether the request matched a route (method and
	// path); others are labelled route="unmatched", so that arbitrary
	// paths never become label values.
	route func(echo.Context) bool
}

// newHTTPMetrics registers the request metrics with reg. When several
// servers share one registry (embedding, or an in-process cluster), they
// share the metrics too rather than failing as duplicates.
func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	labels := []string{"method", "route", "code"}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "countd_http_requests_total",
			Help: "HTTP requests answered, by method, route template (\"unmatched\" for unknown paths) and status code.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "countd_http_request_duration_seconds",
			Help:    "Time from receiving an HTTP request to finishing its response, by method, route template and status code; blocking queries and watch streams count their whole duration.",
			Buckets: cluster.LatencyBuckets(),
		}, labels),
	}
	var err error
	if m.requests, err = registerOrReuse(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = registerOrReuse(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// middleware counts and times every request. It renders a handler's error
// itself, through the server's error handler, so the counted status is the
// one the client gets (a follower's 307, a 409, a forwarded answer).
func (m *httpMetrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" || m.route == nil || !m.route(c) {
			route = "unmatched"
		}
		method := methodLabel(c.Request().Method)
		code := strconv.Itoa(c.Response().Status)
		m.requests.WithLabelValues(method, route, code).Inc()
		m.duration.WithLabelValues(method, route, code).Observe(time.Since(start).Seconds())
		return nil
	}
}

// methodLabel keeps the method label to the standard methods: any other
// string a client sends becomes "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	default:
		return "other"
	}
}

// metricsRegistry is the registry /metrics serves: cfg.Metrics, or a new
// one holding the node's own metrics when the node has any.
func metricsRegistry(node Node, cfg Config) (*prometheus.Registry, error) {
	if cfg.Metrics != nil {
		return cfg.Metrics, nil
	}
	reg := prometheus.NewRegistry()
	if cn, ok := node.(collectorNode); ok {
		if err := reg.Register(cn.Collector()); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// metricsHandler serves reg in the Prometheus text (or negotiated) format.
func metricsHandler(reg *prometheus.Registry) echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}
