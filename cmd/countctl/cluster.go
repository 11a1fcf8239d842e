package main

import (
	"context"
	"fmt"
	"io"
	"strings"

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
	return show(a, func(ctx context.Context, cl *client.Client) (*api.Cluster, error) {
		return cl.Cluster(ctx)
	}, func(_ *client.Client, st *api.Cluster) error {
		var out any = st
		if !withSummary {
			out = struct {
				Members []api.Member `json:"members"`
			}{st.Members}
		}
		return a.printAs(out, func(w io.Writer) error {
			if withSummary {
				fmt.Fprintf(w, "cluster %s: leader %s (%s), term %d, commit %d, applied %d (as seen by %s)\n\n",
					st.Name, orDash(st.Leader), orDash(st.LeaderHTTP), st.Term, st.CommitIndex, st.AppliedIndex, st.NodeID)
			}
			return table(w, "ID\tHTTP\tRAFT\tGOSSIP\tSTATUS\tSUFFRAGE\tLEADER\tLAST CONTACT\tHEALTH", func(w io.Writer) {
				for _, m := range st.Members {
					leader := ""
					if m.Leader {
						leader = "*"
					}
					contact := "-"
					if m.LastContactMS >= 0 {
						contact = fmt.Sprintf("%dms", m.LastContactMS)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, orDash(m.HTTPAddr), orDash(m.RaftAddr),
						orDash(m.GossipAddr), m.Status, m.Suffrage, leader, contact, orDash(m.Health))
				}
			})
		})
	})
}

// leaveCluster acts on the first -a node only (SPEC §6): the leave must not
// wander to another node the way retried requests do.
func (a *app) leaveCluster() error {
	first := strings.TrimSpace(strings.Split(a.addrs, ",")[0])
	return show(a, func(ctx context.Context, cl *client.Client) (*api.ClusterLeave, error) {
		return cl.LeaveCluster(ctx, first)
	}, func(_ *client.Client, res *api.ClusterLeave) error {
		line := fmt.Sprintf("%s left the cluster", res.NodeID)
		if res.TransferredLeadership {
			line += " (handed over leadership first)"
		}
		if !res.Confirmed {
			line += "; the leader has not confirmed its removal yet"
		}
		return a.printLine(res, line)
	})
}

func (a *app) transferLeader(to string) error {
	return show(a, func(ctx context.Context, cl *client.Client) (*api.TransferLeaderResult, error) {
		return cl.TransferLeader(ctx, to)
	}, func(_ *client.Client, res *api.TransferLeaderResult) error {
		return a.printLine(res, fmt.Sprintf("leader is now %s (%s)", res.Leader, orDash(res.LeaderHTTP)))
	})
}

func (a *app) removeMember(id string) error {
	return show(a, func(ctx context.Context, cl *client.Client) (*api.MemberRemoved, error) {
		return cl.RemoveMember(ctx, id)
	}, func(_ *client.Client, res *api.MemberRemoved) error {
		return a.printLine(res, fmt.Sprintf("removed %s from the raft configuration", res.ID))
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
