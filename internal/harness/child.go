package harness

import (
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// Child is a process a test started in a process group of its own (so
// that a kill reaches whatever it spawned), reaped as soon as it exits.
// ZooKeeper and etcd servers, background countctl commands: anything the
// test must be able to see exit, and to kill for good at cleanup.
type Child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's; set before done is closed
}

// StartChild starts cmd as the leader of a new process group and watches
// it. A nil cmd.SysProcAttr becomes ProcAttr() (the child dies with the
// test on Linux); Setpgid is set either way.
func StartChild(cmd *exec.Cmd) (*Child, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = ProcAttr()
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return WatchChild(cmd), nil
}

// WatchChild watches cmd, which the caller started as the leader of its
// own process group and has read what it needed from: Wait, which it
// calls now, closes the command's output pipes.
func WatchChild(cmd *exec.Cmd) *Child {
	c := &Child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c
}

// Pid is the process's ID, also its group's.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Signal sends sig to the process alone.
func (c *Child) Signal(sig syscall.Signal) error { return c.cmd.Process.Signal(sig) }

// Done is closed once the process has exited and been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is how the process ended (exec.Cmd.Wait's error); nil while it runs.
func (c *Child) Err() error {
	if !c.Exited() {
		return nil
	}
	return c.err
}

// Exited reports whether the process has exited.
func (c *Child) Exited() bool { return isClosed(c.done) }

// ExitState describes how the process ended ("exit status 1", "signal:
// killed"), or "" while it runs.
func (c *Child) ExitState() string {
	if !c.Exited() {
		return ""
	}
	return c.cmd.ProcessState.String()
}

// ExitCode is the process's exit code; -1 while it runs or when a signal
// ended it.
func (c *Child) ExitCode() int {
	if !c.Exited() {
		return -1
	}
	return c.cmd.ProcessState.ExitCode()
}

// Kill SIGKILLs the process group and waits up to wait for the process to
// be reaped. One that has exited already is left alone.
func (c *Child) Kill(wait time.Duration) error {
	if c.Exited() {
		return nil
	}
	_ = syscall.Kill(-c.Pid(), syscall.SIGKILL)
	select {
	case <-c.done:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("pid %d still running %s after SIGKILL", c.Pid(), wait)
	}
}
