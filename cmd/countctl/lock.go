package main

// countctl lock: run a command while holding one of the first places of a
// lock queue (SPEC §9), the way `consul lock` and `etcdctl lock` do.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// exitCode makes countctl exit with code and print nothing more: the
// command it ran has said what it had to.
type exitCode struct{ code int }

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func (a *app) lockCommand() *cobra.Command {
	var (
		ttl, grace time.Duration
		limit      int
	)
	cmd := &cobra.Command{
		Use:   "lock NAME [--ttl D] [--limit N] [--grace D] -- CMD ARGS...",
		Short: "Run CMD while holding the lock NAME (one of its first --limit places)",
		Long: `Wait for one of the first --limit places (1: a mutex) of the lock queue NAME,
then run CMD with COUNTD_LOCK, COUNTD_FENCING_TOKEN and COUNTD_SESSION in its
environment, renewing the session every ttl/3 while it runs. If the session
is lost (the cluster could not be reached for a whole --ttl, or it ended),
CMD gets SIGTERM, and SIGKILL after --grace. SIGINT or SIGTERM to countctl
are passed on to CMD the same way. Then the place is given up and countctl
exits with CMD's status (128+N when a signal N ended it).

The fencing token rises with every new holder: hand it to whatever the lock
guards, so that it can refuse a holder that lost the lock without knowing.
A process killed with kill -9 loses its place within --ttl.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return usagef("lock takes NAME, then -- and the command to run")
			}
			if ttl < time.Second || ttl > 24*time.Hour {
				return usagef("--ttl must be from 1s to 24h, got %s", ttl)
			}
			if limit < 1 {
				return usagef("--limit must be at least 1, got %d", limit)
			}
			if grace < 0 {
				return usagef("--grace must not be negative, got %s", grace)
			}
			return a.runLocked(args[0], args[1:], ttl, limit, grace)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&ttl, "ttl", 10*time.Second, "session TTL: how soon the lock is freed after countctl dies (1s to 24h)")
	f.IntVar(&limit, "limit", 1, "how many may hold the lock at once")
	f.DurationVar(&grace, "grace", 10*time.Second, "how long CMD has between SIGTERM and SIGKILL once the lock is lost")
	return cmd
}

func (a *app) runLocked(name string, argv []string, ttl time.Duration, limit int, grace time.Duration) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	ctx, cancel := a.requestCtx()
	ks, err := cl.KeepSession(ctx, ttl, "lock:"+name)
	cancel()
	if err != nil {
		return fmt.Errorf("create the lock's session: %w", err)
	}
	defer func() {
		ctx, cancel := a.requestCtx()
		defer cancel()
		_ = ks.Close(context.WithoutCancel(ctx)) // ends the session: the place goes with it
	}()
	l, err := ks.Lock(a.ctx, name, limit)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := a.requestCtx()
		defer cancel()
		_ = l.Unlock(context.WithoutCancel(ctx))
	}()

	child := exec.Command(argv[0], argv[1:]...)
	child.Stdin, child.Stdout, child.Stderr = a.stdin, a.stdout, a.stderr
	child.Env = append(os.Environ(),
		"COUNTD_LOCK="+name,
		"COUNTD_FENCING_TOKEN="+strconv.FormatUint(l.FencingToken, 10),
		"COUNTD_SESSION="+ks.ID)
	if err := child.Start(); err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()

	var waitErr error
	select {
	case waitErr = <-exited:
	case <-l.Lost:
		fmt.Fprintf(a.stderr, "countctl: lost lock %s (%v); stopping %s\n", name, ks.Err(), argv[0])
		waitErr = stop(child, exited, grace)
	case <-a.ctx.Done():
		waitErr = stop(child, exited, grace)
	}
	var ee *exec.ExitError
	switch {
	case waitErr == nil:
		return nil
	case errors.As(waitErr, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitCode{128 + int(ws.Signal())}
		}
		return exitCode{ee.ExitCode()}
	}
	return fmt.Errorf("wait for %s: %w", argv[0], waitErr)
}

// stop sends the child SIGTERM, then SIGKILL after grace, and returns how
// it ended.
func stop(child *exec.Cmd, exited <-chan error, grace time.Duration) error {
	_ = child.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		return err
	case <-time.After(grace):
		_ = child.Process.Kill()
		return <-exited
	}
}
