package respapi_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/respapi"
)

// FuzzCommand sends any command to a real node: the node never panics,
// answers every command with one reply, keeps answering, and a command
// answered with an error changed nothing (its applied index stands).
// Arguments are the input split at NUL bytes.
func FuzzCommand(f *testing.F) {
	for _, seed := range []string{
		"INCR\x00a", "INCRBY\x00a\x00-5", "DECRBY\x00a\x00x", "SET\x00a\x0012", "SET\x00a\x0012\x00NX",
		"GET\x00a", "DEL\x00a\x00b", "EXISTS\x00a", "CLUSTER\x00SLOTS", "CLUSTER\x00bogus", "CLIENT\x00SETNAME\x00a b",
		"COMMAND\x00DOCS", "CONFIG\x00GET\x00*", "INFO\x00everything", "AUTH\x00x", "HELLO\x003", "SELECT\x00-1",
		"INCR\x00bad/name", "INCR\x00" + strings.Repeat("n", 300), "PING\x00a\x00b", "ECHO", "RAFTPEERS",
	} {
		f.Add([]byte(seed))
	}
	n := solo(f, respapi.Config{}, cluster.Config{})
	f.Fuzz(func(t *testing.T, in []byte) {
		args := bytes.Split(in, []byte{0})
		if len(args) == 0 || len(args[0]) == 0 || len(args) > 64 {
			return
		}
		strs := make([]string, len(args))
		for i, a := range args {
			strs[i] = string(a)
		}
		r := dialRaw(t, n.RESPAddr)
		before := n.Node.State().AppliedIndex()
		r.send(cmd(strs...) + cmd("PING", "still-here"))
		first := r.line()
		// Skip the rest of a multi-line reply up to the PING's answer.
		for {
			l := r.line()
			if l == "$10" {
				if r.line() == "still-here" {
					break
				}
			}
		}
		if strings.HasPrefix(first, "-") {
			if after := n.Node.State().AppliedIndex(); after != before {
				t.Fatalf("%q answered %q but the applied index moved from %d to %d", strs, first, before, after)
			}
		}
	})
}
