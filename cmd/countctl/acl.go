package main

// ACL commands: bootstrap the cluster's first management token, manage
// tokens with a management token, and ask which token one holds.

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

func (a *app) aclCommand() *cobra.Command {
	return group("acl", "ACL tokens", a.aclBootstrap(), a.aclToken(), a.aclWhoami())
}

func (a *app) aclBootstrap() *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create the cluster's first management token (works once per cluster)",
		Long: `Create the cluster's first management token and print it, secret
included: the cluster keeps only a hash of the secret, so this is the only
time it is shown. Works once per cluster; afterwards a holder of a
management token creates the others (acl token create).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return show(a, func(ctx context.Context, cl *client.Client) (*api.ACLToken, error) {
				return cl.BootstrapACL(ctx, api.ACLTokenRequest{Description: description})
			}, a.printToken)
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what the token is for")
	return cmd
}

func (a *app) aclToken() *cobra.Command {
	return group("token", "Create, list, read and delete tokens (needs a management token)",
		a.aclTokenCreate(), a.aclTokenList(), a.aclTokenGet(), a.aclTokenRm())
}

func (a *app) aclTokenCreate() *cobra.Command {
	var (
		req   api.ACLTokenRequest
		rules []string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a token and print its secret (shown only this once)",
		Long: `Create a token. --management makes one that may do anything; otherwise
each --rule RESOURCE:PREFIX:ACCESS grants ACCESS (read, or write which
implies read) on the names of RESOURCE (counters, queues, items, docs,
sessions, cluster, or * for all) that start with PREFIX (empty for all):

  countctl acl token create --description orders --rule counters:orders.:write --rule cluster::read`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			for _, r := range rules {
				parts := strings.Split(r, ":")
				if len(parts) != 3 {
					return usagef("--rule %q must be RESOURCE:PREFIX:ACCESS, e.g. counters:orders.:write", r)
				}
				req.Rules = append(req.Rules, api.ACLRule{Resource: parts[0], Prefix: parts[1], Access: parts[2]})
			}
			return show(a, func(ctx context.Context, cl *client.Client) (*api.ACLToken, error) {
				return cl.CreateToken(ctx, req)
			}, a.printToken)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Description, "description", "", "what the token is for")
	f.BoolVar(&req.Management, "management", false, "a management token: every permission")
	f.StringArrayVar(&rules, "rule", nil, "RESOURCE:PREFIX:ACCESS (repeatable)")
	return cmd
}

func (a *app) aclTokenList() *cobra.Command {
	return withStale(&cobra.Command{Use: "list", Short: "List tokens (never their secrets)", Args: cobra.NoArgs}, staleUsage,
		func(_ []string, opts []client.CallOption) error {
			return show(a, func(ctx context.Context, cl *client.Client) ([]api.ACLToken, error) {
				return cl.Tokens(ctx, opts...)
			}, func(_ *client.Client, toks []api.ACLToken) error {
				return a.printAs(api.ACLTokenList{Tokens: toks}, func(w io.Writer) error {
					return table(w, "ACCESSOR\tMANAGEMENT\tRULES\tDESCRIPTION", func(w io.Writer) {
						for _, t := range toks {
							fmt.Fprintf(w, "%s\t%v\t%s\t%s\n", t.Accessor, t.Management, rulesText(t.Rules), t.Description)
						}
					})
				})
			})
		})
}

func (a *app) aclTokenGet() *cobra.Command {
	return withStale(&cobra.Command{Use: "get ACCESSOR", Short: "Read a token (never its secret)", Args: cobra.ExactArgs(1)}, staleUsage,
		func(args []string, opts []client.CallOption) error {
			return show(a, func(ctx context.Context, cl *client.Client) (*api.ACLToken, error) {
				return cl.Token(ctx, args[0], opts...)
			}, a.printToken)
		})
}

func (a *app) aclTokenRm() *cobra.Command {
	return &cobra.Command{
		Use:   "rm ACCESSOR",
		Short: "Delete a token: it stops working on every node",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.call(func(ctx context.Context, cl *client.Client) error {
				if err := cl.DeleteToken(ctx, args[0]); err != nil {
					return err
				}
				return a.printLine(map[string]string{"deleted": args[0]}, "deleted "+args[0])
			})
		},
	}
}

func (a *app) aclWhoami() *cobra.Command {
	return withStale(&cobra.Command{Use: "whoami", Short: "Show the token countctl presents", Args: cobra.NoArgs}, staleUsage,
		func(_ []string, opts []client.CallOption) error {
			return show(a, func(ctx context.Context, cl *client.Client) (*api.ACLToken, error) {
				return cl.WhoAmI(ctx, opts...)
			}, a.printToken)
		})
}

// printToken prints a token: JSON, or with -o text one line per field.
func (a *app) printToken(_ *client.Client, t *api.ACLToken) error {
	return a.printAs(t, func(w io.Writer) error {
		fmt.Fprintf(w, "accessor     %s\n", t.Accessor)
		if t.Secret != "" {
			fmt.Fprintf(w, "secret       %s\n", t.Secret)
		}
		fmt.Fprintf(w, "description  %s\nmanagement   %v\nrules        %s\n", t.Description, t.Management, rulesText(t.Rules))
		return nil
	})
}

func rulesText(rules []api.ACLRule) string {
	if len(rules) == 0 {
		return "-"
	}
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = r.Resource + ":" + r.Prefix + ":" + r.Access
	}
	return strings.Join(parts, ",")
}
