// Command countctl is the command-line client for a countd cluster.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/countd/countd/client"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks an error in how countctl was called (exit 2); every
// other error is a run-time failure (exit 1).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// app holds the global flags and the streams, so commands are testable.
type app struct {
	addrs   string
	id      string
	process string
	output  string
	timeout time.Duration
	verbose bool

	// Credentials: an ACL token, and TLS material (--ca-cert etc.).
	token      string
	tokenFile  string
	caCert     string
	clientCert string
	clientKey  string

	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	ctx    context.Context
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// run executes countctl with args and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, ctx: ctx, getenv: getenv}
	root := a.rootCommand(getenv)
	root.SetArgs(negativeNumbersAsArgs(root, args))
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return ec.code
	}
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	fmt.Fprintln(stderr, "countctl:", msg)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

// argErrorsAreUsage marks every argument error cobra's validators produce
// as a usage error where it arises, instead of recognising them later by
// their text.
func argErrorsAreUsage(cmd *cobra.Command) {
	if validate := cmd.Args; validate != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := validate(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		argErrorsAreUsage(sub)
	}
}

func (a *app) rootCommand(getenv func(string) string) *cobra.Command {
	defAddr := getenv("COUNTD_ADDR")
	if defAddr == "" {
		defAddr = "http://127.0.0.1:8080"
	}
	root := &cobra.Command{
		Use:           "countctl",
		Short:         "Command-line client for a countd cluster",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != "json" && a.output != "text" {
				return usagef("-o must be json or text, got %q", a.output)
			}
			if a.timeout <= 0 {
				return usagef("--timeout must be positive, got %s", a.timeout)
			}
			return nil
		},
	}
	// Bare, countctl prints its help; an unknown command is a usage error.
	root.Args = cobra.ArbitraryArgs
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return cmd.Help()
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVarP(&a.addrs, "addr", "a", defAddr, "comma-separated node URLs (env COUNTD_ADDR)")
	pf.StringVarP(&a.id, "id", "i", "", "object ID (counter or queue name)")
	pf.StringVarP(&a.output, "output", "o", "json", "output format: json or text")
	pf.DurationVar(&a.timeout, "timeout", 30*time.Second, "deadline for the whole command (per request for --continuous, queue wait and doc watch)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "note retries on stderr")
	// The token's default is read when used, never shown as a flag default
	// in --help.
	pf.StringVar(&a.token, "token", "", "ACL token secret (env COUNTD_TOKEN)")
	pf.StringVar(&a.tokenFile, "token-file", getenv("COUNTD_TOKEN_FILE"), "file holding the ACL token secret (env COUNTD_TOKEN_FILE)")
	pf.StringVar(&a.caCert, "ca-cert", getenv("COUNTD_CACERT"), "PEM file of the cluster's CA, for https:// nodes (env COUNTD_CACERT)")
	pf.StringVar(&a.clientCert, "client-cert", getenv("COUNTD_CLIENT_CERT"), "PEM client certificate, for a cluster that verifies clients (env COUNTD_CLIENT_CERT)")
	pf.StringVar(&a.clientKey, "client-key", getenv("COUNTD_CLIENT_KEY"), "PEM key of --client-cert (env COUNTD_CLIENT_KEY)")
	root.AddCommand(a.counterCommand(), a.queueCommand(getenv), a.itemsCommand(), a.docCommand(), a.sessionCommand(), a.lockCommand(), a.clusterCommand(), a.snapshotCommand(),
		a.aclCommand(), tlsCommand(a), gossipCommand(a))
	argErrorsAreUsage(root)
	return root
}

// client builds a client for the -a nodes, noting its retries with -v;
// adjust may change the configuration. It suits a long-running command,
// which learns the cluster's other nodes before its first request because
// it must outlive the nodes it was given; call adjusts it for a one-shot
// command.
func (a *app) client(adjust ...func(*client.Config)) (*client.Client, error) {
	var addrs []string
	for _, s := range strings.Split(a.addrs, ",") {
		if s = strings.TrimSpace(s); s != "" {
			addrs = append(addrs, s)
		}
	}
	cfg := client.Config{Addrs: addrs}
	if err := a.credentials(&cfg); err != nil {
		return nil, err
	}
	if a.verbose {
		a.noteRetries(&cfg)
	}
	for _, f := range adjust {
		f(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// noteRetries makes a client note each retry on stderr.
func (a *app) noteRetries(cfg *client.Config) {
	cfg.OnRetry = func(r client.RetryInfo) {
		a.note("retrying", "attempt", r.Attempt, "node", r.Node, "error", r.Err)
	}
}

// oneShot configures the client of a command that makes one request (or a
// few): it asks /v1/cluster for the other nodes only if a request has to
// fail over, so a command that works sends nothing but its own requests.
func oneShot(cfg *client.Config) { cfg.DiscoverOnFailover = true }

// note writes a diagnostic line to stderr: fixed text, then the variables
// as key=value fields (quoted when they hold spaces), so the lines read the
// same every time and are easy to search and parse.
func (a *app) note(msg string, kv ...any) {
	var b strings.Builder
	b.WriteString("countctl: " + msg)
	for i := 0; i+1 < len(kv); i += 2 {
		v := fmt.Sprint(kv[i+1])
		if v == "" || strings.ContainsAny(v, " \t\n\"=") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, " %v=%s", kv[i], v)
	}
	fmt.Fprintln(a.stderr, b.String())
}

// call runs a one-shot command: it builds the client and a context
// bounded by --timeout, and hands both to fn.
func (a *app) call(fn func(ctx context.Context, cl *client.Client) error) error {
	cl, err := a.client(oneShot)
	if err != nil {
		return err
	}
	ctx, cancel := a.requestCtx()
	defer cancel()
	return fn(ctx, cl)
}

// callOn is call for commands on the object named by -i, which must be set.
func (a *app) callOn(fn func(ctx context.Context, cl *client.Client, id string) error) error {
	id, err := a.requireID()
	if err != nil {
		return err
	}
	return a.call(func(ctx context.Context, cl *client.Client) error { return fn(ctx, cl, id) })
}

// requestCtx bounds one command (or one request of a long-running one).
func (a *app) requestCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.ctx, a.timeout)
}

func (a *app) requireID() (string, error) {
	if a.id == "" {
		return "", usagef("this command needs -i/--id")
	}
	return a.id, nil
}

// show runs a one-shot command made of one request: fetch makes it and
// print renders the answer.
func show[T any](a *app, fetch func(context.Context, *client.Client) (T, error), print func(*client.Client, T) error) error {
	return a.call(func(ctx context.Context, cl *client.Client) error {
		v, err := fetch(ctx, cl)
		if err != nil {
			return err
		}
		return print(cl, v)
	})
}

// staleUsage is the help of --stale on most of the reads that have it.
const staleUsage = "accept a possibly stale answer from any node"

// withStale gives a read command --stale (with usage as its help) and run
// as its RunE, handed the call options --stale asks for.
func withStale(cmd *cobra.Command, usage string, run func(args []string, opts []client.CallOption) error) *cobra.Command {
	stale := cmd.Flags().Bool("stale", false, usage)
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		var opts []client.CallOption
		if *stale {
			opts = append(opts, client.Stale())
		}
		return run(args, opts)
	}
	return cmd
}

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printAs prints v as JSON, or with -o text what text writes.
func (a *app) printAs(v any, text func(w io.Writer) error) error {
	if a.output == "text" {
		return text(a.stdout)
	}
	return a.printJSON(v)
}

// printLine prints v as JSON, or with -o text the one value line on a line
// of its own.
func (a *app) printLine(v, line any) error {
	return a.printAs(v, func(w io.Writer) error {
		_, err := fmt.Fprintln(w, line)
		return err
	})
}

// table writes header (columns separated by tabs) and the rows that rows
// writes, with the columns aligned.
func table(w io.Writer, header string, rows func(w io.Writer)) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	return tw.Flush()
}

// group is a command that only holds subcommands. Called bare or with an
// unknown subcommand it is a usage error (exit 2), where cobra would print
// help and succeed.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			if len(args) > 0 {
				return usagef("unknown command %q for %q (want one of: %s)", args[0], cmd.CommandPath(), strings.Join(names, ", "))
			}
			return usagef("%q needs a command: %s", cmd.CommandPath(), strings.Join(names, ", "))
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// negativeNumbersAsArgs lets "counter add -5" mean minus five. pflag reads
// every argument starting with '-' as a flag, and no countctl flag is a
// digit, so a bare negative integer that is not the value of the flag
// before it is moved behind "--", where pflag takes it as positional.
func negativeNumbersAsArgs(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil {
		return args
	}
	var keep, moved []string
	for i, arg := range args {
		if arg == "--" {
			return args // the caller separated them already
		}
		if isNegativeInt(arg) && (i == 0 || !takesValue(cmd, args[i-1])) {
			moved = append(moved, arg)
			continue
		}
		keep = append(keep, arg)
	}
	if len(moved) == 0 {
		return args
	}
	return append(append(keep, "--"), moved...)
}

// ifGiven returns v when the flag name was given on the command line and
// nil otherwise: how a flag sets an optional field of a request.
func ifGiven[T any](cmd *cobra.Command, name string, v *T) *T {
	if cmd.Flags().Changed(name) {
		return v
	}
	return nil
}

func isNegativeInt(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil && strings.HasPrefix(s, "-")
}

// takesValue reports whether tok is a flag of cmd that consumes the next
// argument as its value.
func takesValue(cmd *cobra.Command, tok string) bool {
	if !strings.HasPrefix(tok, "-") || strings.Contains(tok, "=") || isNegativeInt(tok) {
		return false
	}
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
		var f *pflag.Flag
		if name, ok := strings.CutPrefix(tok, "--"); ok {
			f = fs.Lookup(name)
		} else if len(tok) == 2 {
			f = fs.ShorthandLookup(tok[1:])
		}
		if f != nil {
			return f.NoOptDefVal == ""
		}
	}
	return false
}

func parseInt(what, s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, usagef("%s must be an integer, got %q", what, s)
	}
	return v, nil
}
