package main

import (
	"context"
	"fmt"
	"strings"
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
	leave := &cobra.Command{
		Use:   "leave",
		Short: "Make the node named by the first -a leave the cluster gracefully (its process exits)",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return a.leaveCluster() },
	}
	transfer := &cobra.Command{
		Use:   "transfer [ID]",
		Short: "Hand leadership to the voter ID, or to the most up-to-date other voter",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			to := ""
			if len(args) == 1 {
				to = args[0]
			}
			return a.transferLeader(to)
		},
	}
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Force-remove a dead member from the Raft configuration",
		Args:  cobra.ExactArgs(1),
		RunE:  func(_ *cobra.Command, args []string) error { return a.removeMember(args[0]) },
	}
	return group("cluster", "Inspect and operate the cluster", status, members, leave, transfer, remove)
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
	fmt.Fprintln(tw, "ID\tHTTP\tRAFT\tGOSSIP\tSTATUS\tSUFFRAGE\tLEADER\tLAST CONTACT\tHEALTH")
	for _, m := range st.Members {
		leader := ""
		if m.Leader {
			leader = "*"
		}
		contact := "-"
		if m.LastContactMS >= 0 {
			contact = fmt.Sprintf("%dms", m.LastContactMS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, orDash(m.HTTPAddr), orDash(m.RaftAddr),
			orDash(m.GossipAddr), m.Status, m.Suffrage, leader, contact, orDash(m.Health))
	}
	return tw.Flush()
}

// leaveCluster acts on the first -a node only (SPEC §6): the leave must not
// wander to another node the way retried requests do.
func (a *app) leaveCluster() error {
	first := strings.TrimSpace(strings.Split(a.addrs, ",")[0])
	var res *api.ClusterLeave
	err := a.call(func(ctx context.Context, cl *client.Client) (err error) {
		res, err = cl.LeaveCluster(ctx, first)
		return err
	})
	if err != nil {
		return err
	}
	if a.output == "json" {
		return a.printJSON(res)
	}
	line := fmt.Sprintf("%s left the cluster", res.NodeID)
	if res.TransferredLeadership {
		line += " (handed over leadership first)"
	}
	if !res.Removed {
		line += "; the leader has not confirmed its removal yet"
	}
	fmt.Fprintln(a.stdout, line)
	return nil
}

func (a *app) transferLeader(to string) error {
	var res *api.TransferLeaderResult
	err := a.call(func(ctx context.Context, cl *client.Client) (err error) {
		res, err = cl.TransferLeader(ctx, to)
		return err
	})
	if err != nil {
		return err
	}
	if a.output == "json" {
		return a.printJSON(res)
	}
	fmt.Fprintf(a.stdout, "leader is now %s (%s)\n", res.Leader, orDash(res.LeaderHTTP))
	return nil
}

func (a *app) removeMember(id string) error {
	var res *api.MemberRemoved
	err := a.call(func(ctx context.Context, cl *client.Client) (err error) {
		res, err = cl.RemoveMember(ctx, id)
		return err
	})
	if err != nil {
		return err
	}
	if a.output == "json" {
		return a.printJSON(res)
	}
	fmt.Fprintf(a.stdout, "removed %s from the raft configuration\n", res.ID)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
