// Command jepsen-lite runs a campaign against a real countd cluster: real
// processes, real faults, a recorded history and a checker that can fail.
//
// It needs root: it creates one network namespace per node plus a hub
// namespace with a bridge, re-executes itself inside the hub (so the
// clients reach every node over the bridge and nothing is configured in
// the root namespace), and deletes everything when it ends, even after a
// failure or ^C. Namespaces left by an earlier run that crashed are
// deleted at start.
//
// Exit status: 0 when the history passed every check, 1 when the checker
// found a violation, 2 when the campaign could not run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/countd/countd/test/jepsen-lite/campaign"
	"github.com/countd/countd/test/jepsen-lite/nemesis"
	"github.com/countd/countd/test/jepsen-lite/netns"
)

type options struct {
	duration time.Duration
	seed     uint64
	nodes    int
	faults   []string
	stale    bool
	insecure bool
	workers  int
	timeout  time.Duration
	out      string
	countd   string
	// inner is set in the re-executed process: "<network id>:<subnet>".
	inner string
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("jepsen-lite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 5*time.Minute, "how long clients and faults run")
	fs.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "seed of the operation mix and the fault schedule")
	fs.IntVar(&o.nodes, "nodes", 3, "cluster size (3 or 5)")
	faults := fs.String("faults", strings.Join(nemesis.Kinds, ","), "comma-separated fault kinds: kill, pause, partition, leave (empty: none)")
	fs.BoolVar(&o.stale, "stale-reads", false, "read counters with ?consistency=stale from random nodes (the checker must flag this)")
	fs.BoolVar(&o.insecure, "insecure", false, "run the nodes without TLS, a gossip key and ACLs (by default they run the production configuration)")
	fs.IntVar(&o.workers, "workers", 8, "concurrent clients")
	fs.DurationVar(&o.timeout, "op-timeout", 1500*time.Millisecond, "bound on one client operation, retries included; unanswered by then, its outcome is unknown")
	fs.StringVar(&o.out, "out", "", "directory for the history, report, visualisations and node logs (default: a new directory under ./jepsen-out)")
	fs.StringVar(&o.countd, "countd", "bin/countd", "the countd binary to test")
	fs.StringVar(&o.inner, "inner", "", "internal: set when running inside the hub namespace")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.nodes != 3 && o.nodes != 5 {
		return nil, fmt.Errorf("-nodes must be 3 or 5, got %d", o.nodes)
	}
	if o.duration <= 0 {
		return nil, fmt.Errorf("-duration must be positive, got %v", o.duration)
	}
	if o.workers < 1 {
		return nil, fmt.Errorf("-workers must be at least 1, got %d", o.workers)
	}
	for _, f := range strings.Split(*faults, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		known := false
		for _, k := range nemesis.Kinds {
			known = known || f == k
		}
		if !known {
			return nil, fmt.Errorf("-faults: unknown fault %q (want some of %s)", f, strings.Join(nemesis.Kinds, ", "))
		}
		o.faults = append(o.faults, f)
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "jepsen-lite:", err)
		return 2
	}
	if o.inner != "" {
		return inner(o, stdout, stderr)
	}
	return outer(o, args, stderr)
}

// outer creates the network, runs the campaign in the hub and removes the
// network whatever happened.
func outer(o *options, args []string, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "jepsen-lite:", err)
		return 2
	}
	if os.Geteuid() != 0 {
		return fail(errors.New("network namespaces need root; run as root (CI does)"))
	}
	countd, err := filepath.Abs(o.countd)
	if err != nil {
		return fail(err)
	}
	if _, err := os.Stat(countd); err != nil {
		return fail(fmt.Errorf("countd binary: %w (build it with make build, or pass -countd)", err))
	}
	if o.out == "" {
		o.out = filepath.Join("jepsen-out", time.Now().Format("20060102-150405"))
	}
	out, err := filepath.Abs(o.out)
	if err != nil {
		return fail(err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail(fmt.Errorf("find my own executable: %w", err))
	}
	if err := netns.CleanupStale(); err != nil {
		fmt.Fprintln(stderr, "jepsen-lite: removing namespaces of an earlier run:", err)
	}
	nw := netns.ForPID(os.Getpid(), o.nodes)
	// ^C reaches the inner process too (same process group); the outer one
	// must outlive it to clean up, and passes on signals sent to it alone.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := nw.Create(context.Background()); err != nil {
		return fail(fmt.Errorf("create the network: %w", err))
	}
	defer func() {
		if err := nw.Destroy(); err != nil {
			fmt.Fprintln(stderr, "jepsen-lite: cleanup:", err)
		}
	}()

	innerArgs := append([]string{"netns", "exec", nw.Hub(), self}, args...)
	innerArgs = append(innerArgs, "-countd", countd, "-out", out, "-seed", strconv.FormatUint(o.seed, 10),
		"-inner", fmt.Sprintf("%s:%d", nw.ID, nw.Subnet))
	cmd := exec.Command("ip", innerArgs...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("start the campaign in %s: %w", nw.Hub(), err))
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-sigs:
			_ = cmd.Process.Signal(sig)
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode()
			}
			if err != nil {
				return fail(err)
			}
			return 0
		}
	}
}

// inner runs the campaign; it is already inside the hub namespace.
func inner(o *options, stdout, stderr io.Writer) int {
	id, subnetText, ok := strings.Cut(o.inner, ":")
	subnet, err := strconv.Atoi(subnetText)
	if !ok || err != nil {
		fmt.Fprintf(stderr, "jepsen-lite: bad -inner %q\n", o.inner)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	rep, err := campaign.Run(ctx, campaign.Config{
		Countd: o.countd, Net: netns.New(id, subnet, o.nodes), Duration: o.duration, Seed: o.seed,
		Faults: o.faults, StaleReads: o.stale, Insecure: o.insecure, Workers: o.workers, OpTimeout: o.timeout, Out: o.out, Log: log,
	})
	if err != nil {
		fmt.Fprintln(stderr, "jepsen-lite:", err)
		return 2
	}
	var s strings.Builder
	rep.WriteSummary(&s)
	fmt.Fprintf(stdout, "%s\nhistory, report and node logs: %s\n", s.String(), o.out)
	if !rep.Summary.Valid {
		return 1
	}
	return 0
}
