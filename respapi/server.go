// Package respapi serves countd's counters over the Redis protocol (RESP2,
// SPEC §10), so any language's Redis client can mint IDs. Parsing is
// tidwall/redcon's; this package turns commands into the same node calls
// httpapi makes (fsm commands through Node.Submit, reads through
// Node.ReadBarrier and the state), checks ACL tokens the same way, and
// sends clients of a follower on to the leader: SummitDB's -TRY, Redis
// Cluster's -MOVED, or a proxied answer.
//
// A connection reads whatever the client pipelined, then answers it in
// order. Writes of one pipeline are submitted one after another without
// waiting, so they share Raft appends with each other and with every other
// client's, and are still applied in the order they were sent.
package respapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
)

// Node is what the RESP front end needs from a cluster node. *cluster.Node
// implements it.
type Node interface {
	// Submit appends a command and returns the wait for its outcome;
	// submissions from one goroutine apply in order (cluster.Node.Submit).
	Submit(ctx context.Context, cmd fsm.Command) func() (fsm.Result, error)
	// SubmitNext mints from a counter, from the leader's memory when it is
	// cached, in submission order like Submit.
	SubmitNext(ctx context.Context, id string, count int64, key string) func() (fsm.Result, error)
	// ReadBarrier returns nil once a read at consistency c may begin.
	ReadBarrier(ctx context.Context, c cluster.Consistency) error
	// State is the local state machine to read from.
	State() *fsm.State
	// Status is the node's view of the cluster.
	Status() cluster.Status
	// NotLeader is nil on the leader, else the error naming the leader.
	NotLeader() error
	// CachedValue is the last value the leader's cache handed out for a
	// cached counter, if it holds a live block.
	CachedValue(cur *fsm.Counter) (int64, bool)
	// ClusterName names the cluster.
	ClusterName() string
	// ID is the node's ID.
	ID() string
}

// Redirect modes: how a follower answers a command only the leader can.
const (
	// RedirectTry answers "-TRY <leader host:port>", as SummitDB does.
	RedirectTry = "try"
	// RedirectMoved answers "-MOVED <slot> <leader host:port>", which Redis
	// Cluster clients follow on their own.
	RedirectMoved = "moved"
)

// Defaults of the limits in Config.
const (
	// DefaultIdleTimeout closes a connection that sends nothing this long.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultMaxPipeline is the most commands of one connection in flight
	// at once; reading the rest waits until their answers are written.
	DefaultMaxPipeline = 1024
	// DefaultMaxArgs is the most arguments one command may carry.
	DefaultMaxArgs = 1024
	// DefaultMaxBulk is the largest command, in bytes, accepted.
	DefaultMaxBulk = 4 << 20
	// DefaultReadTimeout bounds how long the rest of a command may take to
	// arrive once it has begun, and how long an answer may take to be
	// taken by the client.
	DefaultReadTimeout = 30 * time.Second
)

// Config tunes the server.
type Config struct {
	// ACL requires AUTH with a token before anything but AUTH, HELLO and
	// QUIT, and checks every key against the token's rules.
	ACL bool
	// Redirect is RedirectTry (default) or RedirectMoved.
	Redirect string
	// ForwardWrites makes a follower proxy writes and linearizable reads
	// to the leader's RESP port instead of redirecting.
	ForwardWrites bool
	// PeerTLS is the client configuration for forwarding to a leader that
	// serves RESP over TLS; nil for plain TCP.
	PeerTLS *tls.Config
	// MaxBulk is the largest command accepted, in bytes (the node's
	// -max-body); a larger one gets an error and its connection is closed.
	MaxBulk int64
	// MaxArgs is the most arguments (keys, for DEL and EXISTS) one command
	// may carry.
	MaxArgs int
	// MaxPipeline is the most commands of one connection in flight.
	MaxPipeline int
	// IdleTimeout closes a connection idle this long.
	IdleTimeout time.Duration
	// ReadTimeout bounds the rest of a command once it has begun to
	// arrive, and the writing of answers.
	ReadTimeout time.Duration
	Logger      *slog.Logger
}

// Server is countd's RESP front end. Serve it on any number of listeners.
type Server struct {
	node   Node
	cfg    Config
	logger *slog.Logger

	ctx    context.Context // cancelled by Close: ends in-flight waits
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[*conn]struct{}
	lns    map[net.Listener]struct{}
	closed bool
	wg     sync.WaitGroup
	nextID atomic.Int64
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// New builds the front end for node.
func New(node Node, cfg Config) (*Server, error) {
	switch cfg.Redirect {
	case "":
		cfg.Redirect = RedirectTry
	case RedirectTry, RedirectMoved:
	default:
		return nil, fmt.Errorf("redirect must be %q or %q, got %q", RedirectTry, RedirectMoved, cfg.Redirect)
	}
	cfg.MaxBulk = orDefault(cfg.MaxBulk, DefaultMaxBulk)
	cfg.MaxArgs = orDefault(cfg.MaxArgs, DefaultMaxArgs)
	cfg.MaxPipeline = orDefault(cfg.MaxPipeline, DefaultMaxPipeline)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.ReadTimeout = orDefault(cfg.ReadTimeout, DefaultReadTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{node: node, cfg: cfg, logger: cfg.Logger.With("component", "resp"),
		conns: make(map[*conn]struct{}), lns: make(map[net.Listener]struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Serve accepts connections on ln until Close; it returns nil after Close
// and the accept error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: wait, as
				// net/http does, rather than spin.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept RESP connection: %w", err)
		}
		backoff = 0
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops every listener and connection and waits for the
// connections' goroutines. Writes in flight may still commit: their
// clients see a closed connection, an unknown outcome.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// conn is one client connection; only its own goroutine touches it.
type conn struct {
	s      *Server
	nc     net.Conn
	in     *deadlineReader
	rd     *redcon.Reader
	wr     *redcon.Writer
	id     int64
	name   string
	remote string

	// token is the hash of the secret AUTH presented; authed says AUTH
	// succeeded (with ACLs off, every connection is).
	token    fsm.SecretHash
	authed   bool
	secret   string // kept only with ForwardWrites, to AUTH at the leader
	readonly bool   // READONLY: reads are answered from local state
	quit     bool

	fwd *forwarder // the connection to the leader, with ForwardWrites

	queue     []pending // answers not yet written, in command order
	queueKind kind      // what the queued commands wait on
}

func (s *Server) newConn(nc net.Conn) *conn {
	in := &deadlineReader{nc: nc, idle: s.cfg.IdleTimeout, busy: s.cfg.ReadTimeout, limit: s.cfg.MaxBulk + 64<<10}
	return &conn{s: s, nc: nc, in: in, rd: redcon.NewReader(in), wr: redcon.NewWriter(nc), id: s.nextID.Add(1),
		remote: nc.RemoteAddr().String(), authed: !s.cfg.ACL}
}

// serve reads pipelines and answers them until the client leaves, breaks
// the protocol, or the server closes.
func (c *conn) serve() {
	defer c.nc.Close()
	defer c.fwd.close()
	for !c.quit {
		cmds, err := c.rd.ReadCommands()
		c.in.commandsRead()
		if err != nil {
			c.readFailed(err)
			return
		}
		for _, cmd := range cmds {
			if c.quit {
				break
			}
			if len(cmd.Raw) > int(c.s.cfg.MaxBulk) {
				c.drain()
				c.wr.WriteError(fmt.Sprintf("ERR too_large: a command of %d bytes is larger than this node's %d-byte limit (-max-body)", len(cmd.Raw), c.s.cfg.MaxBulk))
				c.flush()
				return
			}
			c.dispatch(cmd.Args)
			if len(c.queue) >= c.s.cfg.MaxPipeline {
				c.drain()
			}
			if len(c.wr.Buffer()) > 64<<10 && !c.flush() {
				return
			}
		}
		c.drain()
		if !c.flush() {
			return
		}
	}
}

// readFailed answers what can be answered about a read that failed, so a
// client that sent garbage or too much is told why before the close.
func (c *conn) readFailed(err error) {
	var tooLarge *errTooLarge
	switch {
	case errors.As(err, &tooLarge):
		c.wr.WriteError(fmt.Sprintf("ERR too_large: a command is larger than this node's %d-byte limit (-max-body)", c.s.cfg.MaxBulk))
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return
	case isTimeout(err):
		return
	default:
		var ne net.Error
		if errors.As(err, &ne) {
			return
		}
		// redcon's protocol errors: say what was wrong with the input.
		c.wr.WriteError("ERR Protocol error: " + err.Error())
	}
	c.flush()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// flush writes the buffered answers; a client that does not take them
// within ReadTimeout is dropped.
func (c *conn) flush() bool {
	if len(c.wr.Buffer()) == 0 {
		return true
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.ReadTimeout))
	if err := c.wr.Flush(); err != nil {
		c.s.logger.Debug("write to RESP client failed", "remote", c.remote, "error", err)
		return false
	}
	return true
}

// deadlineReader is the connection as redcon reads it. It gives an idle
// connection IdleTimeout to send a command and a command that has begun
// ReadTimeout to finish, and refuses a command that grows past limit
// before redcon has buffered it whole (redcon's reader has no limit of its
// own: its buffer doubles until the command fits).
type deadlineReader struct {
	nc          net.Conn
	idle, busy  time.Duration
	limit       int64
	sinceReturn int64 // bytes read since redcon last returned commands
}

// errTooLarge is the read error of a command past the limit.
type errTooLarge struct{}

func (*errTooLarge) Error() string { return "command too large" }

func (r *deadlineReader) Read(p []byte) (int, error) {
	if r.sinceReturn > r.limit {
		return 0, &errTooLarge{}
	}
	d := r.idle
	if r.sinceReturn > 0 {
		d = r.busy
	}
	_ = r.nc.SetReadDeadline(time.Now().Add(d))
	n, err := r.nc.Read(p)
	r.sinceReturn += int64(n)
	return n, err
}

// commandsRead notes that redcon returned: what follows is a new command.
func (r *deadlineReader) commandsRead() { r.sinceReturn = 0 }
