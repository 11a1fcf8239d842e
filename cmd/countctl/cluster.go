package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

func (a *app) clusterCommand() *cobra.Command {
	status := &cobra.Command{
		Use:   "status",
		Short: "Leader, term, indexes and members as the first reachable node sees them",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return a.showCluster(true) },
	}
	members := &cobra.Command{
		Use:   "members",
		Short: "The cluster's members",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return a.showCluster(false) },
	}
	return group("cluster", "Inspect the cluster", status, members)
}

func (a *app) showCluster(withSummary bool) error {
	var st *api.Cluster
	err := a.call(func(ctx context.Context, cl *client.Client) (err error) {
		st, err = cl.Cluster(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if a.output == "json" {
		if withSummary {
			return a.printJSON(st)
		}
		return a.printJSON(struct {
			Members []api.Member `json:"members"`
		}{st.Members})
	}
	if withSummary {
		fmt.Fprintf(a.stdout, "cluster %s: leader %s (%s), term %d, commit %d, applied %d (as seen by %s)\n\n",
			st.Name, orDash(st.Leader), orDash(st.LeaderHTTP), st.Term, st.CommitIndex, st.AppliedIndex, st.NodeID)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHTTP\tRAFT\tGOSSIP\tSTATUS\tSUFFRAGE\tLEADER")
	for _, m := range st.Members {
		leader := ""
		if m.Leader {
			leader = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, orDash(m.HTTPAddr), orDash(m.RaftAddr), orDash(m.GossipAddr), m.Status, m.Suffrage, leader)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
