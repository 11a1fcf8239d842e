package main

// Document commands: read, write and watch versioned JSON documents.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

// docOutput is the JSON countctl prints for a document: the wire document,
// then the cluster.
type docOutput struct {
	api.Document
	Cluster string `json:"cluster"`
}

// docChangeOutput and docResetOutput are the lines doc watch prints.
type docChangeOutput struct {
	Name    string          `json:"name"`
	Event   string          `json:"event"`
	Version uint64          `json:"version"`
	Index   uint64          `json:"index"`
	Changes []api.KeyChange `json:"changes"`
}

type docResetOutput struct {
	Name    string          `json:"name"`
	Event   string          `json:"event"`
	Version uint64          `json:"version"`
	Index   uint64          `json:"index"`
	Value   json.RawMessage `json:"value"`
}

func (a *app) docCommand() *cobra.Command {
	return group("doc", "Read, write and watch JSON documents",
		a.docGet(), a.docPut(), a.docPatch(), a.docRm(), a.docWatch())
}

// printDoc prints a document; -o text prints its value, or with version
// set, its version (what a write changed).
func (a *app) printDoc(cl *client.Client, d *api.Document, version bool) error {
	var line any = string(d.Value)
	if version {
		line = d.Version
	}
	return a.printLine(docOutput{Document: *d, Cluster: cl.ClusterName()}, line)
}

func (a *app) docGet() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Print a document (fails if it does not exist); -o text prints just its value",
		Args:  cobra.ExactArgs(1),
	}
	return withStale(cmd, staleUsage, func(args []string, opts []client.CallOption) error {
		return show(a, func(ctx context.Context, cl *client.Client) (*api.Document, error) {
			return cl.Doc(ctx, args[0], opts...)
		}, func(cl *client.Client, d *api.Document) error { return a.printDoc(cl, d, false) })
	})
}

// valueFlags are the ways put and patch take their JSON.
type valueFlags struct {
	value string
	file  string
}

func (v *valueFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&v.value, "value", "", "the JSON object")
	cmd.Flags().StringVarP(&v.file, "file", "f", "", "read the JSON object from this file (- for stdin)")
}

// read returns the JSON from exactly one source: --value, -f FILE, or, when
// neither is given, stdin (unless stdin is a terminal, where waiting for
// input would only look like a hang).
func (v *valueFlags) read(cmd *cobra.Command, stdin io.Reader) (json.RawMessage, error) {
	f := cmd.Flags()
	var (
		raw    []byte
		source string
	)
	switch {
	case f.Changed("value") && f.Changed("file"):
		return nil, usagef("give the value with --value or -f, not both")
	case f.Changed("value"):
		if !json.Valid([]byte(v.value)) {
			return nil, usagef("--value is not valid JSON: %q", v.value)
		}
		return json.RawMessage(v.value), nil
	case f.Changed("file") && v.file != "-":
		b, err := os.ReadFile(v.file)
		if err != nil {
			return nil, fmt.Errorf("read the value: %w", err)
		}
		raw, source = b, v.file
	default:
		if !f.Changed("file") && isTerminal(stdin) {
			return nil, usagef("%s needs a value: --value JSON, -f FILE, or JSON on stdin", cmd.CommandPath())
		}
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read the value from stdin: %w", err)
		}
		raw, source = b, "stdin"
	}
	raw = bytes.TrimSpace(raw)
	if !json.Valid(raw) {
		return nil, fmt.Errorf("the value from %s is not valid JSON", source)
	}
	return raw, nil
}

// isTerminal reports whether r is a character device: a terminal, or
// /dev/null, which holds no value either, so both get the usage message.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// parseIfMatch turns --if-match (a version, or * for "exists") into a
// call option.
func parseIfMatch(s string) (client.CallOption, error) {
	if s == "*" {
		return client.IfExists(), nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, usagef("--if-match must be a document version or *, got %q", s)
	}
	return client.IfMatch(v), nil
}

// preconditionOpts reads --if-match (and --if-absent where the command has
// it).
func preconditionOpts(cmd *cobra.Command, ifMatch string, ifAbsent bool) ([]client.CallOption, error) {
	var opts []client.CallOption
	if cmd.Flags().Changed("if-match") {
		if ifAbsent {
			return nil, usagef("--if-match and --if-absent exclude each other")
		}
		o, err := parseIfMatch(ifMatch)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	if ifAbsent {
		opts = append(opts, client.IfAbsent())
	}
	return opts, nil
}

func (a *app) docPut() *cobra.Command {
	return a.docWrite("put NAME", "Replace a document with a JSON object; -o text prints the new version",
		`Replace a document with a JSON object from --value, -f FILE or stdin (exactly
one of them; stdin when neither flag is given) and print the new version.

--if-match V writes only if the document is at version V (* : if it exists);
--if-absent only if it does not exist. Otherwise nothing changes and the
command fails.`, true, (*client.Client).PutDoc)
}

func (a *app) docPatch() *cobra.Command {
	return a.docWrite("patch NAME", "Apply a JSON merge patch (RFC 7386) to a document; -o text prints the new version",
		`Apply a JSON merge patch (RFC 7386) from --value, -f FILE or stdin (exactly one
of them; stdin when neither flag is given): keys in the patch replace the
document's, a null removes one. An absent document is created. Prints the new
version; --if-match V applies the patch only at version V (* : if it exists).`, false, (*client.Client).PatchDoc)
}

// ifMatchUsage is the help of --if-match on the document writes.
const ifMatchUsage = "only if the document is at this version (* : only if it exists)"

// docWrite builds put or patch: both send a JSON value from one source,
// conditional on --if-match (and for put --if-absent), and print the new
// version.
func (a *app) docWrite(use, short, long string, withIfAbsent bool,
	write func(*client.Client, context.Context, string, json.RawMessage, ...client.CallOption) (*api.Document, error)) *cobra.Command {
	var (
		v        valueFlags
		ifMatch  string
		ifAbsent bool
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := preconditionOpts(cmd, ifMatch, ifAbsent)
			if err != nil {
				return err
			}
			body, err := v.read(cmd, a.stdin)
			if err != nil {
				return err
			}
			return show(a, func(ctx context.Context, cl *client.Client) (*api.Document, error) {
				return write(cl, ctx, args[0], body, opts...)
			}, func(cl *client.Client, d *api.Document) error { return a.printDoc(cl, d, true) })
		},
	}
	v.register(cmd)
	cmd.Flags().StringVar(&ifMatch, "if-match", "", ifMatchUsage)
	if withIfAbsent {
		cmd.Flags().BoolVar(&ifAbsent, "if-absent", false, "only if the document does not exist")
	}
	return cmd
}

func (a *app) docRm() *cobra.Command {
	var ifMatch string
	cmd := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a document (succeeds if it does not exist)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := preconditionOpts(cmd, ifMatch, false)
			if err != nil {
				return err
			}
			return a.call(func(ctx context.Context, cl *client.Client) error {
				return cl.DeleteDoc(ctx, args[0], opts...)
			})
		},
	}
	cmd.Flags().StringVar(&ifMatch, "if-match", "", ifMatchUsage)
	return cmd
}

func (a *app) docWatch() *cobra.Command {
	var since uint64
	cmd := &cobra.Command{
		Use:   "watch NAME",
		Short: "Print one JSON line per document version until interrupted",
		Long: `Print one JSON line per event until interrupted (Ctrl-C ends it with exit 0):

  {"name","event":"change","version","index","changes":[{"type","key","old","new"}]}
  {"name","event":"reset","version","index","value"}

Without --since the first line is a reset with the current document (value
null if it does not exist); with --since V it starts after version V. The
watch moves to another node when its node fails, and resumes where it left
off, so no version is missed or repeated. A connection that sends nothing,
not even the keepalive countd sends every 15s, for --timeout is taken for
dead. Moves are noted on stderr with -v. The output is the same with -o json
and -o text.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sincep := ifGiven(cmd, "since", &since)
			cl, err := a.client(func(cfg *client.Config) { cfg.WatchIdleTimeout = a.timeout })
			if err != nil {
				return err
			}
			enc := json.NewEncoder(a.stdout)
			name := args[0]
			err = cl.WatchDoc(a.ctx, name, sincep, func(ev client.DocEvent) error {
				if ev.Type == api.EventReset {
					return enc.Encode(docResetOutput{Name: name, Event: ev.Type, Version: ev.Version, Index: ev.Index, Value: ev.Value})
				}
				changes := ev.Changes
				if changes == nil {
					changes = []api.KeyChange{}
				}
				return enc.Encode(docChangeOutput{Name: name, Event: ev.Type, Version: ev.Version, Index: ev.Index, Changes: changes})
			})
			if a.ctx.Err() != nil {
				return nil // interrupted: the way a watch ends
			}
			return err
		},
	}
	cmd.Flags().Uint64Var(&since, "since", 0, "start after this version")
	return cmd
}
