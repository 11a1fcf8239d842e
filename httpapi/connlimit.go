package httpapi

// A cap on the connections one client holds open (SPEC §12): without it,
// one client could hold thousands of idle keep-alive connections and the
// goroutines and buffers behind them.

import (
	"net"
	"sync"
)

// DefaultMaxConnsPerClient is countd's default -max-conns-per-client.
const DefaultMaxConnsPerClient = 200

// LimitConnsPerClient wraps ln so that each client IP holds at most max
// connections at once; a further one is closed as soon as it is accepted.
// Wrap the TCP listener, before TLS, so a refused connection costs no
// handshake.
func LimitConnsPerClient(ln net.Listener, max int) net.Listener {
	return &connLimiter{Listener: ln, max: max, open: map[string]int{}}
}

type connLimiter struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[string]int
}

// Accept implements net.Listener: it returns the next connection within
// its client's cap, closing those over it.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(c)
		l.mu.Lock()
		if l.open[ip] >= l.max {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.open[ip]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *connLimiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

func clientIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// limitedConn gives its client's slot back once, when it closes.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
