package main

// Queue commands: join, leave, configure and inspect queues, and write a
// ZooKeeper myid file on join. Waiting for members is in queue_wait.go,
// the ZooKeeper server list in zkconfig.go.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

// ticketOutput is the JSON countctl prints for a queue ticket: the wire
// ticket (the field names of the monotone seed), then the cluster.
type ticketOutput struct {
	api.Ticket
	Cluster string `json:"cluster"`
}

type queueOutput struct {
	ID           string          `json:"id"`
	FencingToken uint64          `json:"fencing_token"`
	Config       api.QueueConfig `json:"config"`
	Members      []ticketOutput  `json:"members"`
	Index        uint64          `json:"index"`
	Cluster      string          `json:"cluster"`
}

// ticketJSON is t as countctl prints it; tags are {} rather than null.
func ticketJSON(cluster string, t *api.Ticket) ticketOutput {
	out := ticketOutput{Ticket: *t, Cluster: cluster}
	if out.Tags == nil {
		out.Tags = map[string]string{}
	}
	return out
}

func (a *app) queueCommand(getenv func(string) string) *cobra.Command {
	q := group("queue", "Join, leave and inspect queues (-i names the queue, -p the process)",
		a.queueJoin(), a.queueLeave(), a.queueGet(), a.queueList(), a.queueRm(), a.queueConfig(), a.queueWait(), a.queueZKConfig())
	q.PersistentFlags().StringVarP(&a.process, "process", "p", getenv("COUNTD_PROCESS"),
		"this process's ID in the queue, such as $(hostname -f) (env COUNTD_PROCESS)")
	return q
}

func (a *app) requireProcess() (string, error) {
	if a.process == "" {
		return "", usagef("this command needs -p/--process (or COUNTD_PROCESS)")
	}
	return a.process, nil
}

// member is the queue (-i) and the process (-p) of a command that acts as
// this process in the queue.
func (a *app) member() (id, process string, err error) {
	if id, err = a.requireID(); err != nil {
		return "", "", err
	}
	process, err = a.requireProcess()
	return id, process, err
}

func (a *app) printTicket(cl *client.Client, t *api.Ticket) error {
	return a.printLine(ticketJSON(cl.ClusterName(), t), t.Counter)
}

func queueJSON(cl *client.Client, q *api.Queue) queueOutput {
	out := queueOutput{ID: q.ID, FencingToken: q.FencingToken, Config: q.Config, Members: []ticketOutput{}, Index: q.Index, Cluster: cl.ClusterName()}
	for i := range q.Members {
		out.Members = append(out.Members, ticketJSON(out.Cluster, &q.Members[i]))
	}
	return out
}

func (a *app) printQueue(cl *client.Client, q *api.Queue) error {
	return a.printAs(queueJSON(cl, q), func(w io.Writer) error {
		return table(w, "COUNTER\tPOSITION\tPROCESS_ID\tTAGS\tSESSION", func(w io.Writer) {
			for _, m := range q.Members {
				fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\n", m.Counter, m.Position, m.ProcessID, formatTags(m.Tags), cmp.Or(m.Session, "-"))
			}
		})
	})
}

// readQueue reads queue id without its index, for show.
func readQueue(id string, opts ...client.CallOption) func(context.Context, *client.Client) (*api.Queue, error) {
	return func(ctx context.Context, cl *client.Client) (*api.Queue, error) {
		q, _, err := cl.Queue(ctx, id, opts...)
		return q, err
	}
}

// formatTags renders tags as k=v pairs sorted by key, "-" when none.
func formatTags(tags map[string]string) string {
	if len(tags) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		parts = append(parts, k+"="+tags[k])
	}
	return strings.Join(parts, ",")
}

// parseTags turns repeated --tag k=v flags into a map.
func parseTags(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	tags := map[string]string{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, usagef("--tag must be key=value, got %q", f)
		}
		if _, dup := tags[k]; dup {
			return nil, usagef("--tag %s given twice", k)
		}
		tags[k] = v
	}
	return tags, nil
}

func (a *app) queueJoin() *cobra.Command {
	var (
		tagFlags   []string
		myidFile   string
		sessionTTL time.Duration
	)
	cmd := &cobra.Command{
		Use:   "join",
		Short: "Join the queue (idempotent) and print this process's ticket",
		Long: `Join the queue and print this process's ticket; with -o text, just its counter.

Joining again returns the ticket the process already holds (tags unchanged).
--myid-file writes the counter and a newline to PATH (mode 0644), through a
temporary file renamed into place so a reader never sees a partial file, and
creates missing parent directories: it can go straight to
/etc/zookeeper/conf/myid.

With --session-ttl D the member is ephemeral: countctl joins with a new
session, prints the ticket, and stays in the foreground renewing the session
every D/3. SIGINT or SIGTERM leaves the queue and ends the session; if
countctl dies (kill -9, a lost host) the place is freed within D.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			id, process, err := a.member()
			if err != nil {
				return err
			}
			tags, err := parseTags(tagFlags)
			if err != nil {
				return err
			}
			if sessionTTL != 0 {
				if sessionTTL < time.Second || sessionTTL > 24*time.Hour {
					return usagef("--session-ttl must be from 1s to 24h, got %s", sessionTTL)
				}
				return a.joinEphemeral(id, process, tags, myidFile, sessionTTL)
			}
			return show(a, func(ctx context.Context, cl *client.Client) (*api.Ticket, error) {
				return cl.Join(ctx, id, process, tags)
			}, func(cl *client.Client, t *api.Ticket) error {
				// The file first: if it cannot be written the command
				// fails, and stdout stays empty as for any failure.
				if myidFile != "" {
					if err := writeMyID(myidFile, t.Counter); err != nil {
						return err
					}
				}
				return a.printTicket(cl, t)
			})
		},
	}
	cmd.Flags().StringArrayVar(&tagFlags, "tag", nil, "tag the membership with key=value (repeatable)")
	cmd.Flags().StringVar(&myidFile, "myid-file", "", "also write the counter to this file, atomically (e.g. a ZooKeeper myid)")
	cmd.Flags().DurationVar(&sessionTTL, "session-ttl", 0, "join as an ephemeral member held by a session with this TTL, and stay in the foreground renewing it")
	return cmd
}

// joinEphemeral joins with a kept-alive session and holds the place until
// a signal (leave, end the session: exit 0) or the session's loss (exit 1).
func (a *app) joinEphemeral(id, process string, tags map[string]string, myidFile string, ttl time.Duration) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := a.requestCtx()
	ks, err := cl.KeepSession(ctx, ttl, "queue:"+id)
	if err != nil {
		cancel()
		return fmt.Errorf("create the member's session: %w", err)
	}
	cancel()
	t, err := a.joinAsOwn(cl, ks, id, process, tags)
	end := func() {
		// Bounded by --timeout, but not cut short by the SIGINT that
		// asked to leave.
		ctx, cancel := a.cleanupCtx()
		defer cancel()
		_, _ = cl.Leave(ctx, id, process)
		_ = ks.Close(ctx)
	}
	if err != nil {
		if errors.Is(err, errPlaceNotOurs) {
			// The place is someone else's: end only our session.
			ctx, cancel := a.cleanupCtx()
			defer cancel()
			_ = ks.Close(ctx)
		} else {
			end()
		}
		return err
	}
	if myidFile != "" {
		if err := writeMyID(myidFile, t.Counter); err != nil {
			end()
			return err
		}
	}
	if err := a.printTicket(cl, t); err != nil {
		end()
		return err
	}
	select {
	case <-a.ctx.Done():
		end()
		return nil
	case <-ks.Done():
		return fmt.Errorf("lost the place in %s: %w", id, ks.Err())
	}
}

// errPlaceNotOurs marks a join that found the process queued already,
// held by something other than this run's session.
var errPlaceNotOurs = errors.New("the place is not this run's")

// joinAsOwn joins in ks's session. Join is idempotent: a process already
// queued gets its existing ticket back, whatever session it names. When
// that is an earlier run's session (a restart soon after a crash), the
// place goes when that session expires, so this waits for it to end and
// joins again, rather than hold a place that is about to vanish. A
// permanent member, or a session that keeps being renewed (another run
// with the same process ID), is refused.
func (a *app) joinAsOwn(cl *client.Client, ks *client.KeptSession, id, process string, tags map[string]string) (*api.Ticket, error) {
	for attempt := 0; ; attempt++ {
		ctx, cancel := a.requestCtx()
		t, err := cl.Join(ctx, id, process, tags, client.InSession(ks.ID))
		cancel()
		switch {
		case err != nil || t.Session == ks.ID:
			return t, err
		case t.Session == "":
			return nil, fmt.Errorf("%w: %s is already a permanent member of %s (counter %d); leave it first (countctl queue leave) or use another -p",
				errPlaceNotOurs, process, id, t.Counter)
		case attempt == 2:
			return nil, fmt.Errorf("%w: %s is held in %s by session %s, which is still being renewed: another run with the same -p is alive",
				errPlaceNotOurs, process, id, t.Session)
		}
		ctx, cancel = a.requestCtx()
		old, err := cl.Session(ctx, t.Session)
		cancel()
		wait := 100 * time.Millisecond
		switch {
		case err == nil:
			wait += time.Duration(old.ExpiresInMs) * time.Millisecond
		case !client.IsCode(err, api.CodeNotFound): // not found: it just ended
			return nil, err
		}
		fmt.Fprintf(a.stderr, "countctl: %s is held in %s by session %s of an earlier run; waiting %s for it to end\n",
			process, id, t.Session, wait.Round(time.Millisecond))
		select {
		case <-time.After(wait):
		case <-a.ctx.Done():
			return nil, a.ctx.Err()
		case <-ks.Done():
			return nil, ks.Err()
		}
	}
}

// writeMyID writes counter and a newline to path with mode 0644 (ZooKeeper
// may run as another user), atomically.
func writeMyID(path string, counter int64) error {
	err := writeFileAtomic(path, 0o644, func(w io.Writer) error {
		_, err := io.WriteString(w, strconv.FormatInt(counter, 10)+"\n")
		return err
	})
	if err != nil {
		return fmt.Errorf("write --myid-file: %w", err)
	}
	return nil
}

func (a *app) queueLeave() *cobra.Command {
	return &cobra.Command{
		Use:   "leave",
		Short: "Leave the queue (fails if this process is not queued); -o text prints the new fencing token",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			id, process, err := a.member()
			if err != nil {
				return err
			}
			return show(a, func(ctx context.Context, cl *client.Client) (*api.LeaveResult, error) {
				return cl.Leave(ctx, id, process)
			}, func(cl *client.Client, l *api.LeaveResult) error {
				return a.printLine(struct {
					ID           string `json:"id"`
					ProcessID    string `json:"process_id"`
					FencingToken uint64 `json:"fencing_token"`
					Index        uint64 `json:"index"`
					Cluster      string `json:"cluster"`
				}{l.ID, process, l.FencingToken, l.Index, cl.ClusterName()}, l.FencingToken)
			})
		},
	}
}

func (a *app) queueGet() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print this process's ticket (fails if it is not queued); -o text prints its counter",
		Args:  cobra.NoArgs,
	}
	return withStale(cmd, staleUsage, func(_ []string, opts []client.CallOption) error {
		id, process, err := a.member()
		if err != nil {
			return err
		}
		return show(a, func(ctx context.Context, cl *client.Client) (*api.Ticket, error) {
			return cl.QueueMember(ctx, id, process, opts...)
		}, a.printTicket)
	})
}

func (a *app) queueList() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Print the queue and its members in counter order (-o text: a table)",
		Args:  cobra.NoArgs,
	}
	return withStale(cmd, staleUsage, func(_ []string, opts []client.CallOption) error {
		id, err := a.requireID()
		if err != nil {
			return err
		}
		return show(a, readQueue(id, opts...), a.printQueue)
	})
}

func (a *app) queueRm() *cobra.Command {
	return &cobra.Command{
		Use:   "rm",
		Short: "Delete the queue and all its members (a new queue of that name starts again from token 0)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.callOn(func(ctx context.Context, cl *client.Client, id string) error {
				return cl.DeleteQueue(ctx, id)
			})
		},
	}
}

func (a *app) queueConfig() *cobra.Command {
	var (
		lo, hi int64
		reuse  bool
	)
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Set the queue's counter range (--min, --max) and whether freed counters are reused (--reuse)",
		Long: `Set any of the queue's counter range and reuse policy; the rest is kept.

Counters are drawn from [--min, --max]. With --reuse a joining process gets
the lowest free counter (ZooKeeper ids 1 to 255: --min 1 --max 255 --reuse);
without, counters are never handed out twice. Existing members keep their
counters and the fencing token does not move.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := a.requireID()
			if err != nil {
				return err
			}
			req := api.QueueConfigRequest{Min: ifGiven(cmd, "min", &lo), Max: ifGiven(cmd, "max", &hi), Reuse: ifGiven(cmd, "reuse", &reuse)}
			if req.Min == nil && req.Max == nil && req.Reuse == nil {
				return usagef("config needs at least one of --min, --max, --reuse")
			}
			return show(a, func(ctx context.Context, cl *client.Client) (*api.Queue, error) {
				return cl.ConfigureQueue(ctx, id, req)
			}, func(cl *client.Client, q *api.Queue) error {
				return a.printAs(queueJSON(cl, q), func(w io.Writer) error {
					return table(w, "MIN\tMAX\tREUSE", func(w io.Writer) {
						fmt.Fprintf(w, "%d\t%d\t%t\n", q.Config.Min, q.Config.Max, q.Config.Reuse)
					})
				})
			})
		},
	}
	f := cmd.Flags()
	f.Int64Var(&lo, "min", 1, "lowest counter")
	f.Int64Var(&hi, "max", 0, "highest counter (default 2^63-1)")
	f.BoolVar(&reuse, "reuse", false, "hand out the lowest free counter (--reuse=false: never reuse)")
	return cmd
}
