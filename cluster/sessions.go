package cluster

// The leader's side of sessions (SPEC §9): it decides which sessions have
// run out and says so in the log; the state machine checks the decision
// against the leader's time in the entry.

import (
	"context"
	"time"

	"github.com/hashicorp/raft"

	"github.com/countd/countd/fsm"
)

// sessionCheckEvery is how often the leader looks for sessions that ran
// out. With a stable leader a session ends between its TTL and its TTL
// plus this plus one commit after its last renew; after a leader change,
// no sooner than a full TTL after the new leader became ready.
const sessionCheckEvery = 100 * time.Millisecond

// maxExpireBatch bounds how many sessions one expire entry ends.
const maxExpireBatch = 1000

// expireSessions runs for one term on the leader, from when it became
// ready (since, Unix ns): every session gets a full TTL from then, so a
// failover never ends a session that was being renewed.
func (n *Node) expireSessions(ctx context.Context, since int64) {
	t := time.NewTicker(sessionCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids := n.state.ExpiredSessions(time.Now().UnixNano(), since)
		for len(ids) > 0 && ctx.Err() == nil {
			batch := ids[:min(len(ids), maxExpireBatch)]
			ids = ids[len(batch):]
			res, err := n.Apply(ctx, fsm.Command{Payload: fsm.SessionExpire{IDs: batch}})
			if err != nil {
				n.logger.Warn("could not end expired sessions; retrying", "sessions", len(batch), "error", err)
				break
			}
			if ended, ok := res.Value.(*fsm.SessionsEnded); ok && len(ended.IDs) > 0 {
				n.metrics.sessionsExpired.Add(float64(len(ended.IDs)))
				n.logger.Info("sessions expired", "sessions", ended.IDs, "index", res.Index)
			}
		}
	}
}

// SessionExpiresIn is how long s has left as this node sees it: on the
// leader, counting the full TTL every session gets from its start;
// elsewhere from the last renew alone.
func (n *Node) SessionExpiresIn(s *fsm.Session) time.Duration {
	from := s.Renewed
	if n.raft.State() == raft.Leader {
		from = max(from, n.leaderSince.Load())
	}
	return time.Until(time.Unix(0, from).Add(s.TTL))
}
