package bench

// The ceiling: an in-memory HTTP server that answers next the way countd
// does (same path, same JSON, same headers) from an atomic counter, driven
// by the same client as the cluster. It is what HTTP on this machine can
// carry, so every figure of the summary is also given as a ratio to it,
// measured in the same run.

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/countd/countd/api"
)

type ceilingServer struct {
	url      string
	mu       sync.Mutex
	counters map[string]*atomic.Int64
	index    atomic.Uint64
}

var (
	ceilingOnce sync.Once
	ceiling     *ceilingServer
	ceilingErr  error
)

// theCeiling starts the ceiling server once, on a loopback port.
func theCeiling() (*ceilingServer, error) {
	ceilingOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			ceilingErr = err
			return
		}
		s := &ceilingServer{url: "http://" + ln.Addr().String(), counters: map[string]*atomic.Int64{}}
		go func() { _ = http.Serve(ln, s) }() // lives as long as the benchmark process
		ceiling = s
	})
	return ceiling, ceilingErr
}

func (s *ceilingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v1/counters/"), "/next")
	if r.Method != http.MethodPost || !ok {
		http.NotFound(w, r)
		return
	}
	count := int64(1)
	if c := r.URL.Query().Get("count"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 1 {
			http.Error(w, "bad count", http.StatusBadRequest)
			return
		}
		count = n
	}
	s.mu.Lock()
	c := s.counters[id]
	if c == nil {
		c = new(atomic.Int64)
		s.counters[id] = c
	}
	s.mu.Unlock()
	last := c.Add(count)
	index := s.index.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(api.HeaderIndex, strconv.FormatUint(index, 10))
	_ = json.NewEncoder(w).Encode(api.Mint{ID: id, Value: last, First: last - count + 1, Count: count, Step: 1, Index: index})
}
