package main

// Queue commands: join, leave, configure and inspect queues, and write a
// ZooKeeper myid file on join. Waiting for members is in queue_wait.go,
// the ZooKeeper server list in zkconfig.go.

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

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
