package respapi

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/redcon"

	"github.com/countd/countd/fsm"
)

// The connection commands: what clients send to set a connection up.

func cmdPing(c *conn, args [][]byte) {
	switch len(args) {
	case 1:
		c.now(func(w *redcon.Writer) { w.WriteString("PONG") })
	case 2:
		c.now(func(w *redcon.Writer) { w.WriteBulk(args[1]) })
	default:
		c.errorNow("ERR wrong number of arguments for 'ping' command")
	}
}

func cmdEcho(c *conn, args [][]byte) { c.now(func(w *redcon.Writer) { w.WriteBulk(args[1]) }) }

func cmdQuit(c *conn, _ [][]byte) {
	c.now(func(w *redcon.Writer) { w.WriteString("OK") })
	c.quit = true
}

func cmdSelect(c *conn, args [][]byte) {
	if string(args[1]) != "0" {
		c.errorNow("ERR DB index is out of range: countd has one database, 0")
		return
	}
	c.now(func(w *redcon.Writer) { w.WriteString("OK") })
}

// cmdHello refuses every protocol version: countd speaks RESP2, and
// clients that open with HELLO (go-redis, redis-py) then fall back to it
// and to AUTH, as they do with Redis before 6.
func cmdHello(c *conn, _ [][]byte) {
	c.errorNow("NOPROTO countd speaks RESP2 only; send AUTH for a token")
}

// authWait bounds how long a follower looks for a token it does not know:
// the token may have been created a moment ago and not reached it yet.
const authWait = time.Second

// cmdAuth authenticates the connection with an ACL token's secret:
// AUTH <secret> or AUTH <user> <secret> (the user name is ignored, so
// clients that always send one work). Without -acl, AUTH is accepted as
// Redis accepts it with no password set: with an error.
func cmdAuth(c *conn, args [][]byte) {
	if len(args) > 3 {
		c.errorNow("ERR syntax error: AUTH takes a token's secret (AUTH <secret> or AUTH <user> <secret>)")
		return
	}
	if !c.s.cfg.ACL {
		c.errorNow("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		return
	}
	secret := string(args[len(args)-1])
	h := fsm.HashSecret(strings.TrimSpace(secret))
	c.drain()
	_, ok := c.s.node.State().ACLLookup(h)
	if !ok && c.s.node.NotLeader() != nil {
		// A follower a little behind may not have the token yet: only
		// the leader can say it does not exist, and it sends every
		// follower what it has committed within a heartbeat or two.
		deadline := time.Now().Add(authWait)
		for !ok && time.Now().Before(deadline) {
			select {
			case <-time.After(20 * time.Millisecond):
			case <-c.s.ctx.Done():
				return
			}
			_, ok = c.s.node.State().ACLLookup(h)
		}
	}
	if !ok {
		c.authed = false
		c.wr.WriteError("WRONGPASS invalid token: it was never created, or it was deleted")
		return
	}
	c.token, c.authed = h, true
	if c.s.cfg.ForwardWrites {
		c.secret = secret
	}
	c.wr.WriteString("OK")
}

func cmdReadonly(c *conn, _ [][]byte) {
	c.readonly = true
	c.now(func(w *redcon.Writer) { w.WriteString("OK") })
}

func cmdReadwrite(c *conn, _ [][]byte) {
	c.readonly = false
	c.now(func(w *redcon.Writer) { w.WriteString("OK") })
}

// cmdClient answers CLIENT ID, SETNAME, GETNAME and SETINFO.
func cmdClient(c *conn, args [][]byte) {
	switch sub := strings.ToLower(string(args[1])); {
	case sub == "id" && len(args) == 2:
		c.now(func(w *redcon.Writer) { w.WriteInt64(c.id) })
	case sub == "getname" && len(args) == 2:
		c.now(func(w *redcon.Writer) {
			if c.name == "" {
				w.WriteNull()
				return
			}
			w.WriteBulkString(c.name)
		})
	case sub == "setname" && len(args) == 3:
		name := string(args[2])
		if strings.ContainsAny(name, " \n\r") || len(name) > 256 {
			c.errorNow("ERR Client names cannot contain spaces, newlines or special characters, and must be at most 256 bytes.")
			return
		}
		c.name = name
		c.now(func(w *redcon.Writer) { w.WriteString("OK") })
	case sub == "setinfo" && len(args) == 4:
		// Library name and version: accepted and not kept.
		c.now(func(w *redcon.Writer) { w.WriteString("OK") })
	default:
		c.errorNow(fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for 'client|%s'. Try CLIENT ID, GETNAME, SETNAME or SETINFO.", clip(sub)))
	}
}

// configValues is what CONFIG GET shows: how a Redis server would have
// to be configured to keep what countd keeps (every write fsynced before
// it is answered, no snapshots to lose writes between). Tools read these
// at start (redis-benchmark warns without them); nothing is configured
// over RESP.
var configValues = map[string]string{"save": "", "appendonly": "yes", "appendfsync": "always", "databases": "1"}

// cmdConfig answers CONFIG GET for the parameters in configValues, by
// name or glob.
func cmdConfig(c *conn, args [][]byte) {
	if strings.ToLower(string(args[1])) != "get" || len(args) < 3 {
		c.errorNow("ERR countd is configured with flags, not CONFIG; only CONFIG GET <parameter> answers")
		return
	}
	var pairs []string
	for _, name := range sortedKeys(configValues) {
		for _, pat := range args[2:] {
			if ok, _ := path.Match(strings.ToLower(string(pat)), name); ok {
				pairs = append(pairs, name, configValues[name])
				break
			}
		}
	}
	c.now(func(w *redcon.Writer) {
		w.WriteArray(len(pairs))
		for _, p := range pairs {
			w.WriteBulkString(p)
		}
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// cmdCommand answers COMMAND (every command's arity, flags and key
// positions: cluster clients learn from it which commands read), COMMAND
// COUNT, and COMMAND DOCS with nothing (redis-cli asks for it at start).
func cmdCommand(c *conn, args [][]byte) {
	sub := ""
	if len(args) > 1 {
		sub = strings.ToLower(string(args[1]))
	}
	names := sortedKeys(commands)
	c.now(func(w *redcon.Writer) {
		switch sub {
		case "":
			w.WriteArray(len(names))
			for _, name := range names {
				cm := commands[name]
				w.WriteArray(6)
				w.WriteBulkString(name)
				w.WriteInt(cm.arity)
				w.WriteArray(len(cm.flags))
				for _, f := range cm.flags {
					w.WriteString(f)
				}
				w.WriteInt(cm.firstKey)
				w.WriteInt(cm.lastKey)
				w.WriteInt(cm.step)
			}
		case "count":
			w.WriteInt(len(names))
		case "docs":
			w.WriteArray(0)
		default:
			w.WriteError(fmt.Sprintf("ERR unknown subcommand '%s'. Try COMMAND, COMMAND COUNT or COMMAND DOCS.", clip(sub)))
		}
	})
}
