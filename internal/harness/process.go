package harness

// The process backend's node: one countd process at a time, started through
// a Launcher with fixed flags, so a restart is the same node (identity,
// addresses, data dir). Nothing here needs a testing.TB.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/countd/countd/api"
)

// A Launcher turns a node, the countd binary and its arguments into the
// command that runs it. The command's output, environment (when the
// launcher leaves Env nil) and process attributes (when it leaves
// SysProcAttr nil) are set by Process.Start.
type Launcher func(p *Process, bin string, args []string) *exec.Cmd

// Direct runs the binary itself: the default Launcher.
func Direct(_ *Process, bin string, args []string) *exec.Cmd {
	return exec.Command(bin, args...)
}

// Process is one countd process. Its fields describe the node and must not
// change while it runs; a restart (Start after Kill, Terminate or Wait)
// uses them again.
type Process struct {
	ID       string
	HTTPAddr string
	// RESPAddr is where the node serves the Redis protocol; empty for none.
	RESPAddr   string
	RaftAddr   string
	GossipAddr string
	DataDir    string
	// LogPath receives the process's output, appended across restarts,
	// with a line from the harness before each start (see Note).
	LogPath string
	// Join lists gossip addresses for -join; Expect > 0 is passed as
	// -bootstrap-expect.
	Join   []string
	Expect int
	// Flags are extra countd flags, after the ones above.
	Flags []string
	// Env is added to the environment, which is this process's without
	// COUNTD_* variables (countd reads its flags' defaults from them).
	Env []string
	// Bin is the countd binary.
	Bin string
	// Launch starts it; nil means Direct.
	Launch Launcher
	// Auth is what the harness's own requests to the node present (https
	// and the token of a secured cluster); nil for a plain one.
	Auth *Auth

	mu     sync.Mutex
	proc   *Child // the current (or last) process; nil before the first Start
	paused bool
	starts int
}

// Args are the countd arguments the node runs with.
func (p *Process) Args() []string {
	a := []string{
		"-node-id", p.ID,
		"-data-dir", p.DataDir,
		"-http-addr", p.HTTPAddr,
		"-raft-addr", p.RaftAddr,
		"-gossip-addr", p.GossipAddr,
	}
	if p.RESPAddr != "" {
		a = append(a, "-resp-addr", p.RESPAddr)
	}
	if len(p.Join) > 0 {
		a = append(a, "-join", strings.Join(p.Join, ","))
	}
	if p.Expect > 0 {
		a = append(a, "-bootstrap-expect", strconv.Itoa(p.Expect))
	}
	return append(a, p.Flags...)
}

// URL is the node's HTTP base URL.
func (p *Process) URL() string { return p.Auth.Scheme() + "://" + p.HTTPAddr }

// Start launches the process unless it is already running. It touches no
// testing.TB, so several nodes can be started from goroutines at once.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil && !p.proc.Exited() {
		return fmt.Errorf("%s is already running (pid %d)", p.ID, p.proc.Pid())
	}
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s's log: %w", p.ID, err)
	}
	defer f.Close()
	launch := p.Launch
	if launch == nil {
		launch = Direct
	}
	cmd := launch(p, p.Bin, p.Args())
	if cmd.Env == nil {
		cmd.Env = append(WithoutCountdEnv(os.Environ()), p.Env...)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = ProcAttr()
	}
	cmd.Stdout, cmd.Stderr = f, f
	p.starts++
	fmt.Fprintf(f, "%s%d at %s: %s\n", startBanner, p.starts, time.Now().Format(time.StampMicro), strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.ID, err)
	}
	p.proc, p.paused = WatchChild(cmd), false
	return nil
}

// MustStart is Start, failing the test on error.
func (p *Process) MustStart(tb testing.TB) {
	tb.Helper()
	if err := p.Start(); err != nil {
		tb.Fatal(err)
	}
}

// WithoutCountdEnv is env without COUNTD_* variables, so that a process
// a test starts (countd, countctl) sees only the settings the test gives
// it, not the developer's shell's.
func WithoutCountdEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "COUNTD_") {
			out = append(out, kv)
		}
	}
	return out
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// current is the running process, or nil when none runs.
func (p *Process) current() *Child {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

func (p *Process) runningLocked() *Child {
	if p.proc == nil || p.proc.Exited() {
		return nil
	}
	return p.proc
}

// PID is the running process's ID (of its launcher, when Launch wraps
// countd in another command), or 0 when it is not running.
func (p *Process) PID() int {
	if c := p.current(); c != nil {
		return c.Pid()
	}
	return 0
}

// Done is closed when the current process exits; nil before the first
// Start.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return nil
	}
	return p.proc.Done()
}

// Running reports whether the process is alive (paused counts).
func (p *Process) Running() bool { return p.current() != nil }

// Paused reports whether the process is stopped by SIGSTOP.
func (p *Process) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused && p.runningLocked() != nil
}

// ExitState describes how the last process ended; "" while it runs or
// before the first Start.
func (p *Process) ExitState() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return ""
	}
	return p.proc.ExitState()
}

// Signal sends sig to the running process (SIGHUP to reload its
// certificate, say).
func (p *Process) Signal(sig syscall.Signal) error { return p.signal(sig) }

func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.runningLocked()
	if c == nil {
		return fmt.Errorf("%s is not running", p.ID)
	}
	if err := c.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.ID, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
	case syscall.SIGCONT:
		p.paused = false
	}
	p.Note("sent %v", sig)
	return nil
}

// Pause stops the process with SIGSTOP.
func (p *Process) Pause() error { return p.signal(syscall.SIGSTOP) }

// Resume continues a paused process with SIGCONT.
func (p *Process) Resume() error { return p.signal(syscall.SIGCONT) }

// Kill sends SIGKILL and waits until the process is gone; a node that is
// not running is left alone.
func (p *Process) Kill() error {
	if !p.Running() {
		return nil
	}
	if err := p.signal(syscall.SIGKILL); err != nil && p.Running() {
		return err
	}
	_, err := p.Wait(10 * time.Second)
	return err
}

// MustKill is Kill, failing the test on error.
func (p *Process) MustKill(tb testing.TB) {
	tb.Helper()
	if err := p.Kill(); err != nil {
		tb.Fatal(err)
	}
}

// Terminate sends SIGTERM and waits up to timeout for the process to exit.
// It returns the exit code and how long the exit took; on timeout the
// process is killed and exited is false.
func (p *Process) Terminate(timeout time.Duration) (code int, took time.Duration, exited bool) {
	start := time.Now()
	if err := p.signal(syscall.SIGTERM); err != nil {
		return -1, 0, false
	}
	code, err := p.Wait(timeout)
	took = time.Since(start)
	if err != nil {
		p.Note("still running %v after SIGTERM; killing", took)
		_ = p.Kill()
		return -1, took, false
	}
	p.Note("exited %d after SIGTERM in %v", code, took)
	return code, took, true
}

// DumpAndKill makes a stuck process print every goroutine's stack to its
// log (Go's SIGQUIT behaviour) and then kills it.
func (p *Process) DumpAndKill() {
	if p.Running() {
		p.Note("sending SIGQUIT for a goroutine dump")
		_ = p.signal(syscall.SIGQUIT)
		_, _ = p.Wait(5 * time.Second)
	}
	_ = p.Kill()
}

// Wait waits up to timeout for the process to exit and returns its exit
// code.
func (p *Process) Wait(timeout time.Duration) (int, error) {
	p.mu.Lock()
	c := p.proc
	p.mu.Unlock()
	if c == nil {
		return -1, fmt.Errorf("%s was never started", p.ID)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.Done():
		return c.ExitCode(), nil
	case <-t.C:
		return -1, fmt.Errorf("%s (pid %d) still running %v later", p.ID, c.Pid(), timeout)
	}
}

// Note appends a time-stamped line to the node's log, so that what the
// test did stands among what the node logged.
func (p *Process) Note(format string, args ...any) {
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== harness: %s: %s\n", time.Now().Format(time.StampMicro), fmt.Sprintf(format, args...))
}

// startBanner begins the line Start writes into the log before each start.
const startBanner = "=== harness: start #"

// LogSinceStart is the node's log from the last start on: what the current
// (or last) process wrote, and the harness's notes about it.
func (p *Process) LogSinceStart() (string, error) {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return "", err
	}
	s := string(b)
	return s[max(0, strings.LastIndex(s, startBanner)):], nil
}

// LogTail is the last lines of the node's log.
func (p *Process) LogTail(lines int) string { return LogTail(p.LogPath, lines) }

// LogTail is the last lines of the file at path.
func LogTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Status asks the node for GET /v1/cluster.
func (p *Process) Status(ctx context.Context) (*api.Cluster, error) {
	return StatusAs(ctx, p.Auth, p.URL())
}

// ErrLeaveUnsupported is returned by Leave when the node answers 404: it
// has no POST /v1/cluster/leave.
var ErrLeaveUnsupported = errors.New("POST /v1/cluster/leave is not implemented (404)")

// Leave asks the node to leave the cluster gracefully (the process then
// exits by itself) and returns its answer.
func (p *Process) Leave(ctx context.Context) (*api.ClusterLeave, error) {
	p.Note("POST /v1/cluster/leave")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL()+"/v1/cluster/leave", nil)
	if err != nil {
		return nil, err
	}
	// A leave hands over leadership and waits for the leader to confirm
	// the removal: give it longer than a probe.
	hc := *Probe
	hc.Timeout = 30 * time.Second
	resp, err := p.Auth.Do(&hc, req)
	if err != nil {
		return nil, fmt.Errorf("leave %s: %w", p.ID, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, ErrLeaveUnsupported
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("leave %s: %s: %s", p.ID, resp.Status, strings.TrimSpace(string(body)))
	}
	var res api.ClusterLeave
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("leave %s: decode %q: %w", p.ID, body, err)
	}
	return &res, nil
}
