package main

// Session commands (SPEC §9): leases that end when nobody renews them.

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

func (a *app) sessionCommand() *cobra.Command {
	return group("session", "Create, renew, end and list sessions",
		a.sessionCreate(), a.sessionRenew(), a.sessionRm(), a.sessionGet(), a.sessionList())
}

// printSession prints a session as JSON, or with -o text its ID.
func (a *app) printSession(cl *client.Client, s *api.Session) error {
	return a.printLine(struct {
		*api.Session
		Cluster string `json:"cluster"`
	}{s, cl.ClusterName()}, s.ID)
}

func (a *app) sessionCreate() *cobra.Command {
	var (
		ttl  time.Duration
		name string
	)
	cmd := &cobra.Command{
		Use:   "create --ttl D [--name N]",
		Short: "Start a session that ends unless renewed within --ttl (-o text: its ID)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if ttl < time.Second || ttl > 24*time.Hour {
				return usagef("--ttl must be from 1s to 24h, got %s", ttl)
			}
			return show(a, func(ctx context.Context, cl *client.Client) (*api.Session, error) {
				return cl.CreateSession(ctx, ttl, name)
			}, a.printSession)
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the session lives without a renew (1s to 24h)")
	cmd.Flags().StringVar(&name, "name", "", "a name for people reading session lists")
	return cmd
}

func (a *app) sessionRenew() *cobra.Command {
	return &cobra.Command{
		Use:   "renew ID",
		Short: "Restart a session's TTL; a session that has ended is an error",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return show(a, func(ctx context.Context, cl *client.Client) (*api.Session, error) {
				return cl.RenewSession(ctx, args[0])
			}, a.printSession)
		},
	}
}

func (a *app) sessionRm() *cobra.Command {
	return &cobra.Command{
		Use:   "rm ID",
		Short: "End a session",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.call(func(ctx context.Context, cl *client.Client) error {
				return cl.DeleteSession(ctx, args[0])
			})
		},
	}
}

func (a *app) sessionGet() *cobra.Command {
	cmd := &cobra.Command{Use: "get ID", Short: "Print a session", Args: cobra.ExactArgs(1)}
	return withStale(cmd, staleUsage, func(args []string, opts []client.CallOption) error {
		return show(a, func(ctx context.Context, cl *client.Client) (*api.Session, error) {
			return cl.Session(ctx, args[0], opts...)
		}, a.printSession)
	})
}

func (a *app) sessionList() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: "List the live sessions", Args: cobra.NoArgs}
	return withStale(cmd, staleUsage, func(_ []string, opts []client.CallOption) error {
		return show(a, func(ctx context.Context, cl *client.Client) ([]api.Session, error) {
			var all []api.Session
			after := ""
			for {
				page, err := cl.SessionPage(ctx, after, 0, opts...)
				if err != nil {
					return nil, err
				}
				all = append(all, page.Sessions...)
				if page.Next == nil {
					return all, nil
				}
				after = *page.Next
			}
		}, func(cl *client.Client, list []api.Session) error {
			out := struct {
				Sessions []api.Session `json:"sessions"`
				Cluster  string        `json:"cluster"`
			}{Sessions: append([]api.Session{}, list...), Cluster: cl.ClusterName()}
			return a.printAs(out, func(w io.Writer) error {
				return table(w, "ID\tNAME\tTTL\tEXPIRES IN", func(w io.Writer) {
					for _, s := range list {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.ID, s.Name, s.TTL, time.Duration(s.ExpiresInMs)*time.Millisecond)
					}
				})
			})
		})
	})
}
