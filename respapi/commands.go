package respapi

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/redcon"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
)

// kind is what a queued answer waits on. Answers of one kind may be in
// flight together: writes submitted in order are applied in order, and so
// are cached mints. Before a command of another kind (or any read) starts,
// the queue is drained, so a pipeline sees its own writes in the order it
// sent them.
type kind uint8

const (
	kindNone  kind = iota // nothing queued
	kindLog               // Node.Submit (and nexts through the log)
	kindCache             // cached mints from the leader's memory
)

// pending is one queued answer.
type pending struct {
	wait   func() (fsm.Result, error)
	render func(w *redcon.Writer, res fsm.Result, err error)
}

// command describes one Redis command.
type command struct {
	// arity counts the command name: exact when positive, a minimum when
	// negative, as in COMMAND's reply.
	arity int
	// flags are COMMAND's: "write", "readonly", "fast", "noauth"...
	flags []string
	// firstKey, lastKey and step locate the keys, as in COMMAND's reply
	// (lastKey -1: to the end); firstKey 0: no keys.
	firstKey, lastKey, step int
	// access is what each key needs: fsm.AccessRead or fsm.AccessWrite;
	// empty for commands without keys.
	access string
	run    func(c *conn, args [][]byte)
}

// commands is every command served, by lower-case name.
var commands map[string]*command

func init() {
	keyed := func(arity int, access string, first, last int, run func(*conn, [][]byte), flags ...string) *command {
		return &command{arity: arity, flags: flags, firstKey: first, lastKey: last, step: 1, access: access, run: run}
	}
	plain := func(arity int, run func(*conn, [][]byte), flags ...string) *command {
		return &command{arity: arity, flags: flags, run: run}
	}
	commands = map[string]*command{
		"incr":   keyed(2, fsm.AccessWrite, 1, 1, cmdIncr, "write", "fast"),
		"incrby": keyed(3, fsm.AccessWrite, 1, 1, cmdIncrBy, "write", "fast"),
		"decr":   keyed(2, fsm.AccessWrite, 1, 1, cmdDecr, "write", "fast"),
		"decrby": keyed(3, fsm.AccessWrite, 1, 1, cmdDecrBy, "write", "fast"),
		"get":    keyed(2, fsm.AccessRead, 1, 1, cmdGet, "readonly", "fast"),
		"set":    keyed(-3, fsm.AccessWrite, 1, 1, cmdSet, "write"),
		"del":    keyed(-2, fsm.AccessWrite, 1, -1, cmdDel, "write"),
		"exists": keyed(-2, fsm.AccessRead, 1, -1, cmdExists, "readonly", "fast"),

		"ping":       plain(-1, cmdPing, "fast"),
		"echo":       plain(2, cmdEcho, "fast"),
		"quit":       plain(-1, cmdQuit, "noauth", "fast"),
		"auth":       plain(-2, cmdAuth, "noauth", "fast"),
		"hello":      plain(-1, cmdHello, "noauth", "fast"),
		"select":     plain(2, cmdSelect, "fast"),
		"command":    plain(-1, cmdCommand),
		"client":     plain(-2, cmdClient),
		"config":     plain(-2, cmdConfig),
		"info":       plain(-1, cmdInfo),
		"readonly":   plain(1, cmdReadonly, "fast"),
		"readwrite":  plain(1, cmdReadwrite, "fast"),
		"raftleader": plain(1, cmdRaftLeader, "fast"),
		"raftpeers":  plain(1, cmdRaftPeers),
		"cluster":    plain(-2, cmdCluster),
	}
}

func (cm *command) has(flag string) bool {
	for _, f := range cm.flags {
		if f == flag {
			return true
		}
	}
	return false
}

// keys is the command's key arguments.
func (cm *command) keys(args [][]byte) [][]byte {
	if cm.firstKey == 0 || len(args) <= cm.firstKey {
		return nil
	}
	last := cm.lastKey
	if last < 0 {
		last = len(args) + last
	}
	return args[cm.firstKey : last+1]
}

// dispatch checks a command (arity, authentication, names, permissions)
// and runs it. Every refusal is answered in order with the rest.
func (c *conn) dispatch(args [][]byte) {
	name := strings.ToLower(string(args[0]))
	cm := commands[name]
	switch {
	case cm == nil:
		c.errorNow(fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", clip(name), argsPreview(args[1:])))
		return
	case (cm.arity > 0 && len(args) != cm.arity) || (cm.arity < 0 && len(args) < -cm.arity):
		c.errorNow(fmt.Sprintf("ERR wrong number of arguments for '%s' command", name))
		return
	case len(args)-1 > c.s.cfg.MaxArgs:
		c.errorNow(fmt.Sprintf("ERR too_large: %d arguments is more than this node's limit of %d (-max-batch)", len(args)-1, c.s.cfg.MaxArgs))
		return
	}
	if !cm.has("noauth") {
		if !c.authed {
			c.errorNow("NOAUTH Authentication required.")
			return
		}
		if c.s.cfg.ACL {
			tok, ok := c.s.node.State().ACLLookup(c.token)
			if !ok {
				c.authed = false
				c.errorNow("NOAUTH the token this connection authenticated with no longer exists; AUTH again")
				return
			}
			for _, k := range cm.keys(args) {
				if !tok.Allows(fsm.ResourceCounters, string(k), cm.access) {
					c.errorNow(fmt.Sprintf("NOPERM this token lacks %s:%s on %q", fsm.ResourceCounters, cm.access, clip(string(k))))
					return
				}
			}
		}
	}
	for _, k := range cm.keys(args) {
		if err := fsm.CheckName("counter name", string(k)); err != nil {
			c.errorNow(errorLine(err))
			return
		}
	}
	cm.run(c, args)
}

// clip shortens user input quoted back in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func argsPreview(args [][]byte) string {
	var b strings.Builder
	for i, a := range args {
		if i == 3 {
			break
		}
		fmt.Fprintf(&b, "'%s' ", clip(string(a)))
	}
	return b.String()
}

// errorNow answers with an error, in order.
func (c *conn) errorNow(line string) { c.now(func(w *redcon.Writer) { w.WriteError(line) }) }

// now answers at once, after everything queued before it.
func (c *conn) now(write func(w *redcon.Writer)) {
	c.drain()
	write(c.wr)
}

// submit queues an answer of kind k, draining answers of another kind
// first; start is called only then, so it sees their effects.
func (c *conn) submit(k kind, start func(ctx context.Context) func() (fsm.Result, error), render func(*redcon.Writer, fsm.Result, error)) {
	if c.queueKind != k {
		c.drain()
	}
	c.queueKind = k
	c.queue = append(c.queue, pending{wait: start(c.s.ctx), render: render})
}

// drain waits for every queued answer and writes them in order.
func (c *conn) drain() {
	for i, p := range c.queue {
		res, err := p.wait()
		p.render(c.wr, res, err)
		c.queue[i] = pending{}
	}
	c.queue, c.queueKind = c.queue[:0], kindNone
}

// onLeader reports whether this node may run a command that only the
// leader can (a write, or a read that is not stale): on a follower it
// answers for it, with a redirect or the leader's own answer, and returns
// false. Input has been checked before, so bad input is refused here.
func (c *conn) onLeader(args [][]byte) bool {
	err := c.s.node.NotLeader()
	if err == nil {
		return true
	}
	if nl, ok := err.(*cluster.NotLeaderError); ok && nl.LeaderRESP != "" && c.s.cfg.ForwardWrites {
		c.drain()
		c.forward(nl.LeaderRESP, args)
		return false
	}
	c.errorNow(c.redirectLine(err, args))
	return false
}

// intArg parses an integer argument as Redis does, answering the error.
func (c *conn) intArg(b []byte) (int64, bool) {
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		c.errorNow("ERR value is not an integer or out of range")
		return 0, false
	}
	return v, true
}

// renderError writes err, or reports false when there is none.
func (c *conn) renderError(w *redcon.Writer, args [][]byte, err error) bool {
	if err == nil {
		return false
	}
	w.WriteError(c.redirectLine(err, args))
	return true
}

func cmdIncr(c *conn, args [][]byte) { c.next(args) }

// next mints one value: INCR is a counter's next, so it honours the
// counter's increment and offset, and a cached counter mints from memory.
func (c *conn) next(args [][]byte) {
	if !c.onLeader(args) {
		return
	}
	id := string(args[1])
	k := kindLog
	if c.s.node.State().CounterCache(id) > 0 {
		k = kindCache
	}
	c.submit(k, func(ctx context.Context) func() (fsm.Result, error) {
		return c.s.node.SubmitNext(ctx, id, 1, "")
	}, func(w *redcon.Writer, res fsm.Result, err error) {
		if err == nil {
			err = res.Err
		}
		if c.renderError(w, args, err) {
			return
		}
		w.WriteInt64(res.Value.(*fsm.Mint).Last)
	})
}

func cmdIncrBy(c *conn, args [][]byte) {
	if d, ok := c.intArg(args[2]); ok {
		c.add(args, d)
	}
}

func cmdDecr(c *conn, args [][]byte) { c.add(args, -1) }

func cmdDecrBy(c *conn, args [][]byte) {
	d, ok := c.intArg(args[2])
	if !ok {
		return
	}
	if d == -d && d != 0 { // math.MinInt64 has no negation
		c.errorNow("ERR decrement would overflow")
		return
	}
	c.add(args, -d)
}

// add is INCRBY, DECR and DECRBY: a counter's add, which a never-written
// counter takes from 0, as Redis does.
func (c *conn) add(args [][]byte, delta int64) {
	if !c.onLeader(args) {
		return
	}
	c.apply(args, fsm.CounterAdd{ID: string(args[1]), Delta: delta}, func(w *redcon.Writer, v any) {
		w.WriteInt64(v.(*fsm.Counter).Value)
	})
}

// apply submits a write through the log and renders its result value.
func (c *conn) apply(args [][]byte, p fsm.Payload, render func(w *redcon.Writer, v any)) {
	c.submit(kindLog, func(ctx context.Context) func() (fsm.Result, error) {
		return c.s.node.Submit(ctx, fsm.Command{Payload: p})
	}, func(w *redcon.Writer, res fsm.Result, err error) {
		if err == nil {
			err = res.Err
		}
		if c.renderError(w, args, err) {
			return
		}
		render(w, res.Value)
	})
}

func cmdSet(c *conn, args [][]byte) {
	if len(args) > 3 {
		c.errorNow("ERR syntax error: SET takes a key and an integer value; options such as EX, NX or GET are not supported by countd's counters")
		return
	}
	v, ok := c.intArg(args[2])
	if !ok || !c.onLeader(args) {
		return
	}
	c.apply(args, fsm.CounterSet{ID: string(args[1]), Value: &v}, func(w *redcon.Writer, _ any) { w.WriteString("OK") })
}

// read waits for the read barrier (stale with READONLY) and answers from
// the local state.
func (c *conn) read(args [][]byte, answer func(w *redcon.Writer, st *fsm.State)) {
	cons := cluster.Linearizable
	if c.readonly {
		cons = cluster.Stale
	} else if !c.onLeader(args) {
		return
	}
	c.drain()
	if err := c.s.node.ReadBarrier(c.s.ctx, cons); err != nil {
		c.wr.WriteError(c.redirectLine(err, args))
		return
	}
	answer(c.wr, c.s.node.State())
}

func cmdGet(c *conn, args [][]byte) {
	c.read(args, func(w *redcon.Writer, st *fsm.State) {
		ctr, _, err := st.Counter(string(args[1]))
		switch {
		case err != nil:
			w.WriteError(c.redirectLine(err, args))
		case ctr.Index == 0:
			w.WriteNull() // never written, as Redis answers a missing key
		default:
			if v, ok := c.s.node.CachedValue(ctr); ok {
				ctr.Value = v
			}
			w.WriteBulkString(strconv.FormatInt(ctr.Value, 10))
		}
	})
}

func cmdExists(c *conn, args [][]byte) {
	c.read(args, func(w *redcon.Writer, st *fsm.State) {
		n := 0
		for _, k := range args[1:] {
			if ctr, _, err := st.Counter(string(k)); err == nil && ctr.Index != 0 {
				n++
			}
		}
		w.WriteInt(n)
	})
}

// cmdDel deletes counters one log entry each, in order, and answers how
// many existed. A monotonic counter, or another kind under a name, refuses
// the whole command before anything is deleted.
func cmdDel(c *conn, args [][]byte) {
	if !c.onLeader(args) {
		return
	}
	c.drain()
	// Refuse before deleting anything: a key of another kind, or a
	// monotonic counter (delete it over HTTP with force), refuses the
	// whole command, as a refused command changes nothing.
	st := c.s.node.State()
	deleted := 0
	for _, k := range args[1:] {
		ctr, _, err := st.Counter(string(k))
		switch {
		case err != nil:
			c.wr.WriteError(c.redirectLine(err, args))
			return
		case ctr.Monotonic:
			c.wr.WriteError(fmt.Sprintf("ERR %s: counter %s is monotonic; deleting it would let old values be minted again (DEL cannot force it; use HTTP with ?force=true)", api.CodeNotMonotonic, clip(string(k))))
			return
		case ctr.Index != 0:
			deleted++
		}
	}
	for _, k := range args[1:] {
		res, err := c.s.node.Submit(c.s.ctx, fsm.Command{Payload: fsm.CounterDelete{ID: string(k)}})()
		if err == nil {
			err = res.Err
		}
		if c.renderError(c.wr, args, err) {
			return
		}
	}
	c.wr.WriteInt(deleted)
}
