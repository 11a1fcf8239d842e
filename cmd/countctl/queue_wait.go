package main

// queue wait: block until a queue has enough members, for as long as it
// takes, through leader changes.

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

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
			cl, err := a.client()
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
	type read struct {
		q    *api.Queue
		next uint64
	}
	var (
		index uint64
		first = true
		full  *api.Queue
	)
	err := repeat(a, a.verbose, func(ctx context.Context) (read, error) {
		var r read
		var err error
		if first {
			r.q, r.next, err = cl.Queue(ctx, id)
		} else {
			r.q, r.next, err = cl.WaitQueue(ctx, id, index, a.timeout)
		}
		return r, err
	}, func(r read) (bool, error) {
		if len(r.q.Members) >= n {
			full = r.q
			return true, nil
		}
		if r.next < index {
			// The index went back (a restore, or a new cluster at the same
			// address): waiting for the old one could take forever.
			r.next = 0
		}
		index, first = r.next, false
		return false, nil
	})
	if a.ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted while waiting for %d members of queue %s", n, id)
	}
	return full, err
}
