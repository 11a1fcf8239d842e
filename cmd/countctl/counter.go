package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

// counterOutput is the JSON countctl prints for a counter, with the field
// names of the monotone seed (id, value, cluster) first.
type counterOutput struct {
	ID        string `json:"id"`
	Value     int64  `json:"value"`
	Cluster   string `json:"cluster"`
	Increment int64  `json:"increment"`
	Offset    int64  `json:"offset"`
	Monotonic bool   `json:"monotonic"`
	Cache     int64  `json:"cache"`
	Index     uint64 `json:"index"`
}

type mintOutput struct {
	ID      string `json:"id"`
	Value   int64  `json:"value"`
	Cluster string `json:"cluster"`
	First   int64  `json:"first"`
	Count   int64  `json:"count"`
	Step    int64  `json:"step"`
	Index   uint64 `json:"index"`
}

func (a *app) counterCommand() *cobra.Command {
	return group("counter", "Read and change counters (-i names the counter)",
		a.counterGet(), a.counterNext(), a.counterAdd(), a.counterSet(), a.counterRm(), a.counterList())
}

func counterJSON(cl *client.Client, c *api.Counter) counterOutput {
	return counterOutput{ID: c.ID, Value: c.Value, Cluster: cl.ClusterName(), Increment: c.Increment, Offset: c.Offset, Monotonic: c.Monotonic, Cache: c.Cache, Index: c.Index}
}

func (a *app) printCounter(cl *client.Client, c *api.Counter) error {
	return a.printLine(counterJSON(cl, c), c.Value)
}

func (a *app) counterGet() *cobra.Command {
	cmd := &cobra.Command{Use: "get", Short: "Print a counter", Args: cobra.NoArgs}
	return withStale(cmd, "accept a possibly stale value from any node", func(_ []string, opts []client.CallOption) error {
		id, err := a.requireID()
		if err != nil {
			return err
		}
		return show(a, func(ctx context.Context, cl *client.Client) (*api.Counter, error) {
			return cl.Counter(ctx, id, opts...)
		}, a.printCounter)
	})
}

func (a *app) counterNext() *cobra.Command {
	var (
		count      int64
		continuous bool
	)
	cmd := &cobra.Command{
		Use:   "next",
		Short: "Mint the next ID (or --count N of them)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			id, err := a.requireID()
			if err != nil {
				return err
			}
			if count < 1 {
				return usagef("--count must be at least 1, got %d", count)
			}
			if continuous {
				cl, err := a.client(a.noteRetries)
				if err != nil {
					return err
				}
				return a.mintForever(cl, id, count)
			}
			return show(a, func(ctx context.Context, cl *client.Client) (*api.Mint, error) {
				return cl.Next(ctx, id, count)
			}, a.printMint)
		},
	}
	cmd.Flags().Int64Var(&count, "count", 1, "how many IDs to mint at once")
	cmd.Flags().BoolVar(&continuous, "continuous", false, "keep minting forever, one integer per line, through leader failover")
	return cmd
}

func (a *app) printMint(cl *client.Client, m *api.Mint) error {
	out := mintOutput{ID: m.ID, Value: m.Value, Cluster: cl.ClusterName(), First: m.First, Count: m.Count, Step: m.Step, Index: m.Index}
	return a.printAs(out, func(io.Writer) error { return printRange(a, m) })
}

func printRange(a *app, m *api.Mint) error {
	v := m.First
	for i := int64(0); i < m.Count; i++ {
		if _, err := fmt.Fprintln(a.stdout, v); err != nil {
			return err
		}
		v += m.Step
	}
	return nil
}

// mintForever mints until interrupted. A request whose outcome is unknown is
// repeated with the same idempotency key, so it is never applied twice and
// no printed integer ever repeats; only a refusal by the cluster itself (a
// wrong type, an overflow) stops the loop.
func (a *app) mintForever(cl *client.Client, id string, count int64) error {
	key := client.NewIdempotencyKey()
	err := repeat(a, true, func(ctx context.Context) (*api.Mint, error) {
		return cl.Next(ctx, id, count, client.WithIdempotencyKey(key))
	}, func(m *api.Mint) (bool, error) {
		key = client.NewIdempotencyKey()
		return false, printRange(a, m)
	})
	if a.ctx.Err() != nil {
		return nil // interrupted: the way --continuous ends
	}
	return err
}

func (a *app) counterAdd() *cobra.Command {
	var def int64
	cmd := &cobra.Command{
		Use:   "add N",
		Short: "Add N (may be negative) to a counter",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := a.requireID()
			if err != nil {
				return err
			}
			delta, err := parseInt("N", args[0])
			if err != nil {
				return err
			}
			defp := ifGiven(cmd, "default", &def)
			return show(a, func(ctx context.Context, cl *client.Client) (*api.AddResult, error) {
				return cl.Add(ctx, id, delta, defp)
			}, func(cl *client.Client, r *api.AddResult) error {
				return a.printLine(struct {
					ID      string `json:"id"`
					Value   int64  `json:"value"`
					Cluster string `json:"cluster"`
					Index   uint64 `json:"index"`
				}{r.ID, r.Value, cl.ClusterName(), r.Index}, r.Value)
			})
		},
	}
	cmd.Flags().Int64Var(&def, "default", 0, "starting value if the counter was never written")
	return cmd
}

func (a *app) counterSet() *cobra.Command {
	var (
		increment, offset, ifValue, cache int64
		monotonic                         bool
	)
	cmd := &cobra.Command{
		Use:   "set [N]",
		Short: "Set a counter's value and/or its --increment, --offset, --monotonic, --cache (--if-value for compare-and-set)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := a.requireID()
			if err != nil {
				return err
			}
			var req api.SetRequest
			if len(args) == 1 {
				v, err := parseInt("N", args[0])
				if err != nil {
					return err
				}
				req.Value = &v
			}
			req.Increment = ifGiven(cmd, "increment", &increment)
			req.Offset = ifGiven(cmd, "offset", &offset)
			req.Monotonic = ifGiven(cmd, "monotonic", &monotonic)
			req.IfValue = ifGiven(cmd, "if-value", &ifValue)
			req.Cache = ifGiven(cmd, "cache", &cache)
			if req.Value == nil && req.Increment == nil && req.Offset == nil && req.Monotonic == nil && req.Cache == nil {
				return usagef("set needs a value N or one of --increment, --offset, --monotonic, --cache")
			}
			return show(a, func(ctx context.Context, cl *client.Client) (*api.Counter, error) {
				return cl.Set(ctx, id, req)
			}, a.printCounter)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&increment, "increment", 1, "step between minted IDs (1 to 2^62)")
	f.Int64Var(&offset, "offset", 0, "minted IDs are congruent to this modulo the increment")
	f.BoolVar(&monotonic, "monotonic", false, "refuse any write that lowers the value (cannot be turned off)")
	f.Int64Var(&ifValue, "if-value", 0, "only set if the current value is this (compare-and-set)")
	f.Int64Var(&cache, "cache", 0, "mint from the leader's memory in blocks of this many values reserved through the log (1 to 1000000; 0 turns it off)")
	return cmd
}

func (a *app) counterRm() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm",
		Short: "Delete a counter (reset it to defaults)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.callOn(func(ctx context.Context, cl *client.Client, id string) error {
				return cl.DeleteCounter(ctx, id, force)
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "delete even a monotonic counter (its old values can then be minted again)")
	return cmd
}

func (a *app) counterList() *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List counters",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return show(a, func(ctx context.Context, cl *client.Client) ([]api.Counter, error) {
				return cl.Counters(ctx, prefix)
			}, a.printCounters)
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "only counters whose ID starts with this")
	return cmd
}

func (a *app) printCounters(cl *client.Client, list []api.Counter) error {
	out := struct {
		Counters []counterOutput `json:"counters"`
		Cluster  string          `json:"cluster"`
	}{Counters: []counterOutput{}, Cluster: cl.ClusterName()}
	for i := range list {
		out.Counters = append(out.Counters, counterJSON(cl, &list[i]))
	}
	return a.printAs(out, func(w io.Writer) error {
		return table(w, "ID\tVALUE\tINCREMENT\tOFFSET\tMONOTONIC\tCACHE", func(w io.Writer) {
			for _, c := range list {
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%t\t%d\n", c.ID, c.Value, c.Increment, c.Offset, c.Monotonic, c.Cache)
			}
		})
	})
}
