package respapi

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tidwall/redcon"
)

// forwarder is a connection's own connection to the leader, for
// ForwardWrites: the follower sends the command on as the client sent it
// (authenticated with the client's token) and relays the leader's answer
// byte for byte.
type forwarder struct {
	addr string
	nc   net.Conn
	buf  []byte
	used time.Time // the last round trip
}

func (f *forwarder) close() {
	if f != nil && f.nc != nil {
		f.nc.Close()
	}
}

// dialTimeout bounds connecting to the leader to forward.
const dialTimeout = 5 * time.Second

// forward answers args with the leader's answer. A failure before the
// command was sent is safe to retry (TRYAGAIN); after, its outcome is
// unknown.
func (c *conn) forward(leader string, args [][]byte) {
	// The leader closes a connection idle for its -resp-idle-timeout; a
	// command sent on one it may have closed would look lost in flight.
	if c.fwd != nil && time.Since(c.fwd.used) > c.s.cfg.IdleTimeout/2 {
		c.fwd.close()
		c.fwd = nil
	}
	if c.fwd == nil || c.fwd.addr != leader {
		c.fwd.close()
		f, err := c.dialLeader(leader)
		if err != nil {
			c.fwd = nil
			c.wr.WriteError(fmt.Sprintf("TRYAGAIN could not reach the leader at %s to forward the command: %s", leader, oneLine(err.Error())))
			return
		}
		c.fwd = f
	}
	var cmd []byte
	cmd = redcon.AppendArray(cmd, len(args))
	for _, a := range args {
		cmd = redcon.AppendBulk(cmd, a)
	}
	reply, err := c.fwd.roundTrip(cmd, c.s.cfg.ReadTimeout)
	if err != nil {
		c.fwd.close()
		c.fwd = nil
		c.wr.WriteError("ERR unknown_result: the connection to the leader broke while it had the command; it may or may not have been applied")
		return
	}
	c.wr.WriteRaw(reply)
}

func (c *conn) dialLeader(addr string) (*forwarder, error) {
	d := &net.Dialer{Timeout: dialTimeout}
	var nc net.Conn
	var err error
	if c.s.cfg.PeerTLS != nil {
		nc, err = tls.DialWithDialer(d, "tcp", addr, c.s.cfg.PeerTLS)
	} else {
		nc, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	f := &forwarder{addr: addr, nc: nc}
	if c.s.cfg.ACL {
		auth := redcon.AppendArray(nil, 2)
		auth = redcon.AppendBulkString(auth, "AUTH")
		auth = redcon.AppendBulkString(auth, c.secret)
		reply, err := f.roundTrip(auth, c.s.cfg.ReadTimeout)
		if err == nil && string(reply) != "+OK\r\n" {
			err = fmt.Errorf("the leader refused this connection's token: %s", reply)
		}
		if err != nil {
			nc.Close()
			return nil, err
		}
	}
	return f, nil
}

// roundTrip sends one command and reads one complete answer.
func (f *forwarder) roundTrip(cmd []byte, timeout time.Duration) ([]byte, error) {
	f.used = time.Now()
	_ = f.nc.SetDeadline(f.used.Add(timeout))
	if _, err := f.nc.Write(cmd); err != nil {
		return nil, err
	}
	f.buf = f.buf[:0]
	chunk := make([]byte, 4096)
	for {
		if n, resp := redcon.ReadNextRESP(f.buf); n > 0 && resp.Type != 0 {
			return f.buf[:n], nil
		}
		if len(f.buf) > 64<<20 {
			return nil, errors.New("the leader's answer is too large")
		}
		n, err := f.nc.Read(chunk)
		if err != nil {
			return nil, err
		}
		f.buf = append(f.buf, chunk[:n]...)
	}
}
