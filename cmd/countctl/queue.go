package main

// Queue commands: join, leave and inspect queues, wait for a quorum of
// members, write a ZooKeeper myid file and print a ZooKeeper server list.

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
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

// ticketOutput is the JSON countctl prints for a queue ticket, with the
// field names of the monotone seed.
type ticketOutput struct {
	ID           string            `json:"id"`
	ProcessID    string            `json:"process_id"`
	Counter      int64             `json:"counter"`
	Position     int               `json:"position"`
	Tags         map[string]string `json:"tags"`
	FencingToken uint64            `json:"fencing_token"`
	Index        uint64            `json:"index"`
	Cluster      string            `json:"cluster"`
}

type queueOutput struct {
	ID           string          `json:"id"`
	FencingToken uint64          `json:"fencing_token"`
	Config       api.QueueConfig `json:"config"`
	Members      []ticketOutput  `json:"members"`
	Index        uint64          `json:"index"`
	Cluster      string          `json:"cluster"`
}

func ticketJSON(cluster string, t *api.Ticket) ticketOutput {
	tags := t.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return ticketOutput{ID: t.ID, ProcessID: t.ProcessID, Counter: t.Counter, Position: t.Position, Tags: tags,
		FencingToken: t.FencingToken, Index: t.Index, Cluster: cluster}
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

// callAsMember is callOn for commands that act as this process (-p) in the
// queue (-i).
func (a *app) callAsMember(fn func(ctx context.Context, cl *client.Client, id, process string) error) error {
	id, err := a.requireID()
	if err != nil {
		return err
	}
	process, err := a.requireProcess()
	if err != nil {
		return err
	}
	return a.call(func(ctx context.Context, cl *client.Client) error { return fn(ctx, cl, id, process) })
}

func (a *app) printTicket(cl *client.Client, t *api.Ticket) error {
	if a.output == "text" {
		_, err := fmt.Fprintln(a.stdout, t.Counter)
		return err
	}
	return a.printJSON(ticketJSON(cl.ClusterName(), t))
}

func (a *app) printQueue(cl *client.Client, q *api.Queue) error {
	if a.output == "text" {
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "COUNTER\tPOSITION\tPROCESS_ID\tTAGS")
		for _, m := range q.Members {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\n", m.Counter, m.Position, m.ProcessID, formatTags(m.Tags))
		}
		return tw.Flush()
	}
	out := queueOutput{ID: q.ID, FencingToken: q.FencingToken, Config: q.Config, Members: []ticketOutput{}, Index: q.Index, Cluster: cl.ClusterName()}
	for i := range q.Members {
		out.Members = append(out.Members, ticketJSON(out.Cluster, &q.Members[i]))
	}
	return a.printJSON(out)
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
		tagFlags []string
		myidFile string
	)
	cmd := &cobra.Command{
		Use:   "join",
		Short: "Join the queue (idempotent) and print this process's ticket",
		Long: `Join the queue and print this process's ticket; with -o text, just its counter.

Joining again returns the ticket the process already holds (tags unchanged).
--myid-file writes the counter and a newline to PATH (mode 0644), through a
temporary file renamed into place so a reader never sees a partial file, and
creates missing parent directories: it can go straight to
/etc/zookeeper/conf/myid.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			id, err := a.requireID()
			if err != nil {
				return err
			}
			process, err := a.requireProcess()
			if err != nil {
				return err
			}
			tags, err := parseTags(tagFlags)
			if err != nil {
				return err
			}
			return a.call(func(ctx context.Context, cl *client.Client) error {
				t, err := cl.Join(ctx, id, process, tags)
				if err != nil {
					return err
				}
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
	return cmd
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
			return a.callAsMember(func(ctx context.Context, cl *client.Client, id, process string) error {
				l, err := cl.Leave(ctx, id, process)
				if err != nil {
					return err
				}
				if a.output == "text" {
					_, err = fmt.Fprintln(a.stdout, l.FencingToken)
					return err
				}
				return a.printJSON(struct {
					ID           string `json:"id"`
					ProcessID    string `json:"process_id"`
					FencingToken uint64 `json:"fencing_token"`
					Index        uint64 `json:"index"`
					Cluster      string `json:"cluster"`
				}{l.ID, process, l.FencingToken, l.Index, cl.ClusterName()})
			})
		},
	}
}

func (a *app) queueGet() *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print this process's ticket (fails if it is not queued); -o text prints its counter",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.callAsMember(func(ctx context.Context, cl *client.Client, id, process string) error {
				t, err := cl.QueueMember(ctx, id, process, staleOpt(stale)...)
				if err != nil {
					return err
				}
				return a.printTicket(cl, t)
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "accept a possibly stale answer from any node")
	return cmd
}

func staleOpt(stale bool) []client.CallOption {
	if stale {
		return []client.CallOption{client.Stale()}
	}
	return nil
}

func (a *app) queueList() *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Print the queue and its members in counter order (-o text: a table)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.callOn(func(ctx context.Context, cl *client.Client, id string) error {
				q, _, err := cl.Queue(ctx, id, staleOpt(stale)...)
				if err != nil {
					return err
				}
				return a.printQueue(cl, q)
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "accept a possibly stale answer from any node")
	return cmd
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
			var req api.QueueConfigRequest
			f := cmd.Flags()
			if f.Changed("min") {
				req.Min = &lo
			}
			if f.Changed("max") {
				req.Max = &hi
			}
			if f.Changed("reuse") {
				req.Reuse = &reuse
			}
			if req.Min == nil && req.Max == nil && req.Reuse == nil {
				return usagef("config needs at least one of --min, --max, --reuse")
			}
			return a.call(func(ctx context.Context, cl *client.Client) error {
				q, err := cl.ConfigureQueue(ctx, id, req)
				if err != nil {
					return err
				}
				if a.output == "text" {
					tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "MIN\tMAX\tREUSE")
					fmt.Fprintf(tw, "%d\t%d\t%t\n", q.Config.Min, q.Config.Max, q.Config.Reuse)
					return tw.Flush()
				}
				return a.printQueue(cl, q)
			})
		},
	}
	f := cmd.Flags()
	f.Int64Var(&lo, "min", 1, "lowest counter")
	f.Int64Var(&hi, "max", 0, "highest counter (default 2^63-1)")
	f.BoolVar(&reuse, "reuse", false, "hand out the lowest free counter (--reuse=false: never reuse)")
	return cmd
}

func (a *app) queueWait() *cobra.Command {
	var members int
	cmd := &cobra.Command{
		Use:   "wait --members N",
		Short: "Wait until at least N processes are queued, then print the queue",
		Long: `Wait until at least N processes are queued, then print the queue as list does.

It waits as long as it takes, with blocking queries that the cluster answers
as soon as the queue changes. --timeout bounds each request, not the wait;
requests that fail are repeated (noted on stderr with -v).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := a.requireID()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("members") {
				return usagef("wait needs --members N")
			}
			if members < 0 {
				return usagef("--members must not be negative, got %d", members)
			}
			cl, err := a.client(false)
			if err != nil {
				return err
			}
			q, err := a.waitMembers(cl, id, members)
			if err != nil {
				return err
			}
			return a.printQueue(cl, q)
		},
	}
	cmd.Flags().IntVar(&members, "members", 0, "how many members to wait for")
	return cmd
}

// waitMembers runs blocking queries until the queue has at least n
// members. Each request has --timeout; a request that fails for a reason
// retrying might fix is repeated, so the wait outlasts leader changes.
func (a *app) waitMembers(cl *client.Client, id string, n int) (*api.Queue, error) {
	var (
		index   uint64
		first   = true
		backoff = 50 * time.Millisecond
	)
	for {
		ctx, cancel := a.requestCtx()
		var (
			q    *api.Queue
			next uint64
			err  error
		)
		if first {
			q, next, err = cl.Queue(ctx, id)
		} else {
			q, next, err = cl.WaitQueue(ctx, id, index, a.timeout)
		}
		cancel()
		if err != nil {
			if a.ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted while waiting for %d members of queue %s", n, id)
			}
			var apiErr *client.Error
			if errors.As(err, &apiErr) && apiErr.Status < 500 {
				return nil, err
			}
			if a.verbose {
				fmt.Fprintf(a.stderr, "countctl: retrying: %v\n", err)
			}
			// The client retried until the deadline already, or the node
			// answered a 5xx at once: pause so the latter cannot spin.
			if sleepCtx(a.ctx, backoff) != nil {
				return nil, fmt.Errorf("interrupted while waiting for %d members of queue %s", n, id)
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if len(q.Members) >= n {
			return q, nil
		}
		if next < index {
			// The index went back (a restore, or a new cluster at the same
			// address): waiting for the old one could take forever.
			next = 0
		}
		index, first = next, false
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ZooKeeper server-list tags a member may carry to override the flags for
// its own line, for several servers sharing one host.
const (
	tagZKQuorumPort   = "zk.quorum_port"
	tagZKElectionPort = "zk.election_port"
	tagZKClientPort   = "zk.client_port"
)

// zkPorts are the ports of one server line; client 0 means none.
type zkPorts struct {
	quorum, election, client int
}

func (a *app) queueZKConfig() *cobra.Command {
	var (
		ports      string
		clientPort int
	)
	cmd := &cobra.Command{
		Use:   "zk-config",
		Short: "Print a ZooKeeper server list: server.<counter>=<process_id>:2888:3888 in counter order",
		Long: `Print one ZooKeeper server line per member, in counter order:

  server.<counter>=<process_id>:<quorum port>:<election port>[;<client port>]

so the queue's counters are the servers' myid values (see join --myid-file).
--ports Q:E sets the quorum and election ports (default 2888:3888);
--client-port P appends ";P" (ZooKeeper 3.5+ dynamic configuration).

Servers sharing one host need their own ports (and process IDs that differ
yet name that host, such as aliases zk1, zk2, zk3 in /etc/hosts). A member
whose tags include zk.quorum_port, zk.election_port or zk.client_port gets
those values on its line instead of the flags', for example:

  countctl -i myzk queue -p zk2 join --tag zk.quorum_port=2889 \
      --tag zk.election_port=3889 --tag zk.client_port=2182

The output is the same with -o json and -o text.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := a.requireID()
			if err != nil {
				return err
			}
			def, err := parseZKPorts(ports)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("client-port") {
				if !validPort(clientPort) {
					return usagef("--client-port must be a port number from 1 to 65535, got %d", clientPort)
				}
				def.client = clientPort
			}
			return a.call(func(ctx context.Context, cl *client.Client) error {
				q, _, err := cl.Queue(ctx, id)
				if err != nil {
					return err
				}
				lines, err := zkConfigLines(q.Members, def)
				if err != nil {
					return fmt.Errorf("queue %s: %w", id, err)
				}
				for _, l := range lines {
					if _, err := fmt.Fprintln(a.stdout, l); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&ports, "ports", "2888:3888", "quorum and election ports, Q:E")
	cmd.Flags().IntVar(&clientPort, "client-port", 0, "client port to append as ;P")
	return cmd
}

func validPort(p int) bool { return p >= 1 && p <= 65535 }

// parseZKPorts parses --ports Q:E.
func parseZKPorts(s string) (zkPorts, error) {
	qs, es, ok := strings.Cut(s, ":")
	q, qerr := strconv.Atoi(qs)
	e, eerr := strconv.Atoi(es)
	if !ok || qerr != nil || eerr != nil || !validPort(q) || !validPort(e) {
		return zkPorts{}, usagef("--ports must be QUORUM:ELECTION, two port numbers from 1 to 65535, got %q", s)
	}
	return zkPorts{quorum: q, election: e}, nil
}

// zkConfigLines renders members as ZooKeeper server lines in counter order,
// each with def's ports unless the member's zk.* tags override them.
func zkConfigLines(members []api.Ticket, def zkPorts) ([]string, error) {
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(x, y api.Ticket) int { return cmp.Compare(x.Counter, y.Counter) })
	lines := make([]string, 0, len(sorted))
	for _, m := range sorted {
		p := def
		for _, o := range []struct {
			tag  string
			port *int
		}{{tagZKQuorumPort, &p.quorum}, {tagZKElectionPort, &p.election}, {tagZKClientPort, &p.client}} {
			v, ok := m.Tags[o.tag]
			if !ok {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || !validPort(n) {
				return nil, fmt.Errorf("member %s has tag %s=%q, which is not a port number from 1 to 65535", m.ProcessID, o.tag, v)
			}
			*o.port = n
		}
		line := fmt.Sprintf("server.%d=%s:%d:%d", m.Counter, m.ProcessID, p.quorum, p.election)
		if p.client != 0 {
			line += ";" + strconv.Itoa(p.client)
		}
		lines = append(lines, line)
	}
	return lines, nil
}
