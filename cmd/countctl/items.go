package main

// Item commands: exact per-tenant counts of distinct item IDs.

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

func (a *app) itemsCommand() *cobra.Command {
	return group("items", "Count distinct items per tenant", a.itemsAdd(), a.itemsCount())
}

func (a *app) itemsAdd() *cobra.Command {
	return &cobra.Command{
		Use:   "add TENANT ITEM_ID...",
		Short: "Add items to a tenant in one atomic batch; -o text prints how many were new",
		Long: `Add items to a tenant in one atomic batch and print how many were new and how
many were already counted. An item posted again counts once, so repeating
the command is harmless. One invalid item ID rejects the whole batch, and a
batch larger than the cluster's limit (10000 by default) is refused.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			tenant := args[0]
			items := make([]api.Item, 0, len(args)-1)
			for _, id := range args[1:] {
				items = append(items, api.Item{ID: id, Tenant: tenant})
			}
			return show(a, func(ctx context.Context, cl *client.Client) (*api.ItemsResult, error) {
				return cl.AddItems(ctx, items)
			}, func(cl *client.Client, r *api.ItemsResult) error {
				return a.printLine(struct {
					Tenant     string `json:"tenant"`
					Added      int64  `json:"added"`
					Duplicates int64  `json:"duplicates"`
					Index      uint64 `json:"index"`
					Cluster    string `json:"cluster"`
				}{tenant, r.Added, r.Duplicates, r.Index, cl.ClusterName()}, r.Added)
			})
		},
	}
}

func (a *app) itemsCount() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "count TENANT",
		Short: "Print how many distinct items a tenant has (-o text: the integer)",
		Args:  cobra.ExactArgs(1),
	}
	return withStale(cmd, staleUsage, func(args []string, opts []client.CallOption) error {
		return show(a, func(ctx context.Context, cl *client.Client) (*api.TenantCount, error) {
			return cl.ItemCount(ctx, args[0], opts...)
		}, func(cl *client.Client, n *api.TenantCount) error {
			return a.printLine(struct {
				*api.TenantCount
				Cluster string `json:"cluster"`
			}{n, cl.ClusterName()}, n.Count)
		})
	})
}
