package respapi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
)

// redirectLine is the error line for err, as Redis clients expect it: the
// first word says what kind of error it is (clients act on TRY, MOVED,
// TRYAGAIN, CLUSTERDOWN and WRONGTYPE); a rule refusal is "ERR <code>:
// <sentence>" with the code of the HTTP API's error body.
func (c *conn) redirectLine(err error, args [][]byte) string {
	var nl *cluster.NotLeaderError
	var fe *fsm.Error
	switch {
	case errors.As(err, &nl) && nl.LeaderID == "":
		if c.s.cfg.Redirect == RedirectMoved {
			return "CLUSTERDOWN no leader is known (an election is in progress); retry shortly"
		}
		return "TRYAGAIN no leader is known (an election is in progress); retry shortly"
	case errors.As(err, &nl) && nl.LeaderRESP == "":
		return fmt.Sprintf("TRYAGAIN this node is not the leader, and the leader (%s) has not advertised a Redis address (it runs without -resp-addr, or gossip has not told this node yet)", nl.LeaderID)
	case errors.As(err, &nl):
		if c.s.cfg.Redirect == RedirectMoved {
			slot := 0
			if len(args) > 1 {
				slot = keySlot(args[1])
			}
			return fmt.Sprintf("MOVED %d %s", slot, nl.LeaderRESP)
		}
		return "TRY " + nl.LeaderRESP
	case errors.As(err, &fe) && fe.Code == api.CodeWrongType:
		return "WRONGTYPE " + oneLine(fe.Message)
	case errors.As(err, &fe):
		return fmt.Sprintf("ERR %s: %s", fe.Code, oneLine(fe.Message))
	case errors.Is(err, cluster.ErrUnknownResult):
		return "ERR unknown_result: leadership changed before the write was confirmed; it may or may not have been applied (an INCR retried leaves a gap, never a duplicate; an INCRBY that must apply once belongs on HTTP with an Idempotency-Key)"
	case errors.Is(err, cluster.ErrUnavailable):
		return "TRYAGAIN the node cannot take writes right now (" + oneLine(err.Error()) + "); retry shortly"
	case errors.Is(err, context.Canceled):
		return "ERR shutting_down: the node is stopping; retry on another node"
	default:
		return "ERR internal: " + oneLine(err.Error())
	}
}

// errorLine is the line of an input error found before anything ran.
func errorLine(err error) string {
	var fe *fsm.Error
	if errors.As(err, &fe) {
		return fmt.Sprintf("ERR %s: %s", fe.Code, oneLine(fe.Message))
	}
	return "ERR " + oneLine(err.Error())
}

// oneLine keeps an error on the one line RESP allows.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
