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

	"github.com/countd/countd/client"
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
environment, renewing the session every ttl/3 while it runs.

CMD is dead before the cluster could end the session and hand the lock on.
The session could end a --ttl after the last renew that succeeded was sent;
if renewing fails for so long that this moment comes within min(--grace,
ttl/3) (plus a small margin), the lock is at risk: CMD gets SIGTERM, and
SIGKILL a margin of 100ms + ttl/100 before that moment at the latest, even
if a renew then succeeds. If the cluster says the session has ended, CMD
gets SIGTERM at once. SIGINT or SIGTERM to countctl are passed on to CMD the
same way. SIGKILL follows SIGTERM after --grace, or sooner when the session
could otherwise end first. Then the place is given up and countctl exits
with CMD's status (128+N when a signal N ended it), saying on stderr if the
lock was lost.

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
	f.DurationVar(&grace, "grace", 10*time.Second, "most time CMD has between SIGTERM and SIGKILL when it must stop; SIGKILL comes sooner when the session would otherwise end first")
	return cmd
}

// lockKillMargin is how long before the session's Deadline countctl kills
// its command at the latest. The Deadline already errs on the safe side:
// it is a TTL after the last successful renew was sent, and the leader
// counts its TTL from applying that renew, later. The margin covers what
// it does not: countctl's timer firing late (scheduling, GC, a loaded
// host: tens of milliseconds), SIGKILL's delivery and the kernel tearing
// the process down (well under a millisecond, more for a huge one), and
// the leader's clock running faster than this host's over one TTL
// (NTP-disciplined clocks differ by far less than 0.1%; 1% is generous,
// even for virtual machines). So 100 ms plus 1% of the TTL: 110 ms for
// the shortest TTL of 1s, 200 ms for the default 10s. It is below TTL/3
// for every TTL allowed, so even with the longest SIGTERM lead (TTL/3 on
// top of it) a session is at risk only when a renew, sent every TTL/3,
// has not got through for TTL/3 minus the margin.
func lockKillMargin(ttl time.Duration) time.Duration {
	return 100*time.Millisecond + ttl/100
}

// cleanupCtx bounds a request made on the way out: like requestCtx it ends
// after --timeout, but SIGINT or SIGTERM to countctl (which cancel a.ctx)
// do not end it, since giving the lock up is what they ask for. Without
// the timeout, a cluster that cannot be reached would keep countctl
// retrying for ever.
func (a *app) cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(a.ctx), a.timeout)
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
		// Ends the session if it still lives: the place goes with it.
		ctx, cancel := a.cleanupCtx()
		defer cancel()
		_ = ks.Close(ctx)
	}()
	l, err := ks.Lock(a.ctx, name, limit)
	if err != nil {
		return err
	}

	// The command must be dead before the session can end: SIGTERM when
	// the session comes within termLead of its Deadline (the lock is at
	// risk), SIGKILL within killLead. termLead leaves the command up to
	// --grace to stop by itself, but at most TTL/3, so that a session
	// whose renews get through is never at risk.
	killLead := lockKillMargin(ttl)
	termLead := killLead + min(grace, ttl/3)
	atRisk, mustDie := ks.AtRisk(termLead), ks.AtRisk(killLead)
	select {
	case <-atRisk:
		a.unlock(ks, l)
		return fmt.Errorf("lock %s: its session %s was not renewed in time, so %s was not started", name, ks.ID, argv[0])
	default:
	}

	child := exec.Command(argv[0], argv[1:]...)
	child.Stdin, child.Stdout, child.Stderr = a.stdin, a.stdout, a.stderr
	child.Env = append(os.Environ(),
		"COUNTD_LOCK="+name,
		"COUNTD_FENCING_TOKEN="+strconv.FormatUint(l.FencingToken, 10),
		"COUNTD_SESSION="+ks.ID)
	if err := child.Start(); err != nil {
		a.unlock(ks, l)
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()

	var (
		waitErr  error
		riskedAt time.Time // the Deadline when the lock was found at risk
	)
	select {
	case waitErr = <-exited:
	case <-l.Lost:
		fmt.Fprintf(a.stderr, "countctl: lost lock %s (%v); stopping %s\n", name, ks.Err(), argv[0])
		waitErr = stop(child, exited, grace, mustDie)
	case <-atRisk:
		riskedAt = ks.Deadline()
		left := time.Until(riskedAt)
		fmt.Fprintf(a.stderr, "countctl: lock %s at risk: its session %s has not been renewed for %v and may end in %v; stopping %s\n",
			name, ks.ID, (ttl - left).Round(time.Millisecond), max(left, 0).Round(time.Millisecond), argv[0])
		waitErr = stop(child, exited, grace, mustDie)
	case <-a.ctx.Done():
		waitErr = stop(child, exited, grace, mustDie)
	}
	a.unlock(ks, l)
	if !riskedAt.IsZero() {
		if err := ks.Err(); err != nil {
			fmt.Fprintf(a.stderr, "countctl: lost lock %s (%v)\n", name, err)
		} else if ks.Deadline().After(riskedAt) {
			fmt.Fprintf(a.stderr, "countctl: lock %s: its session was renewed after %s was told to stop; %s stayed stopped, since the lock had been at risk\n", name, argv[0], argv[0])
		}
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

// unlock gives the place up, within --timeout. A session known to be lost
// holds no place to give up; one lost while unlock waits for the cluster
// ends the wait, for the same reason.
func (a *app) unlock(ks *client.KeptSession, l *client.Lock) {
	if ks.Err() != nil {
		return
	}
	ctx, cancel := a.cleanupCtx()
	defer cancel()
	go func() {
		select {
		case <-ks.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	_ = l.Unlock(ctx)
}

// stop sends the child SIGTERM, then SIGKILL after grace or when mustDie
// is closed, whichever comes first, and returns how it ended.
func stop(child *exec.Cmd, exited <-chan error, grace time.Duration, mustDie <-chan struct{}) error {
	_ = child.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-exited:
		return err
	case <-t.C:
	case <-mustDie:
	}
	_ = child.Process.Kill()
	return <-exited
}
