// Package nodes runs the countd processes of a jepsen-lite campaign, each
// inside its own network namespace, and does to them what the nemesis
// asks: kill -9, SIGSTOP/SIGCONT, a graceful leave, and restarts with the
// same identity, addresses, data dir and -join flags.
package nodes

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
	"time"

	"github.com/countd/countd/api"
)

// Ports every node uses on its own address.
const (
	HTTPPort   = 8080
	RaftPort   = 8300
	GossipPort = 8301
)

// Node is one countd process. Its flags never change, so a restart is the
// same node.
type Node struct {
	ID        string
	Namespace string
	IP        string
	DataDir   string
	LogPath   string
	// Join holds every node's gossip address; Expect is the cluster size.
	Join   []string
	Expect int
	// Bin is the countd binary.
	Bin string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current process has exited
	paused bool
	starts int
}

// URL is the node's HTTP base URL.
func (n *Node) URL() string { return "http://" + n.HTTPAddr() }

// HTTPAddr is host:port of the node's API.
func (n *Node) HTTPAddr() string { return hostPort(n.IP, HTTPPort) }

// GossipAddr is host:port of the node's gossip.
func (n *Node) GossipAddr() string { return hostPort(n.IP, GossipPort) }

func hostPort(ip string, port int) string { return ip + ":" + strconv.Itoa(port) }

func (n *Node) args() []string {
	return []string{
		"netns", "exec", n.Namespace, n.Bin,
		"-node-id", n.ID,
		"-data-dir", n.DataDir,
		"-http-addr", n.HTTPAddr(),
		"-raft-addr", hostPort(n.IP, RaftPort),
		"-gossip-addr", n.GossipAddr(),
		"-join", strings.Join(n.Join, ","),
		"-bootstrap-expect", strconv.Itoa(n.Expect),
	}
}

// Start launches the process. `ip netns exec` enters the namespace and
// execs countd in place, so the process signalled later is countd itself.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && !isClosed(n.done) {
		return fmt.Errorf("%s is already running (pid %d)", n.ID, n.cmd.Process.Pid)
	}
	f, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s's log: %w", n.ID, err)
	}
	defer f.Close()
	n.starts++
	fmt.Fprintf(f, "=== jepsen-lite: start #%d at %s: ip %s\n", n.starts, time.Now().Format(time.StampMicro), strings.Join(n.args(), " "))
	cmd := exec.Command("ip", n.args()...)
	cmd.Stdout, cmd.Stderr = f, f
	// The nodes die with the campaign, whatever kills it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.paused = cmd, done, false
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Running reports whether the process is alive (paused counts).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && !isClosed(n.done)
}

// Paused reports whether the process is stopped by SIGSTOP.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused && n.cmd != nil && !isClosed(n.done)
}

func (n *Node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || isClosed(n.done) {
		return fmt.Errorf("%s is not running", n.ID)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", n.ID, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
	n.note("sent %v", sig)
	return nil
}

// Pause stops the process with SIGSTOP.
func (n *Node) Pause() error { return n.signal(syscall.SIGSTOP) }

// Resume continues a paused process with SIGCONT.
func (n *Node) Resume() error { return n.signal(syscall.SIGCONT) }

// Kill sends SIGKILL and waits until the process is gone.
func (n *Node) Kill() error {
	if !n.Running() {
		return nil
	}
	if err := n.signal(syscall.SIGKILL); err != nil && n.Running() {
		return err
	}
	_, err := n.Wait(10 * time.Second)
	return err
}

// DumpAndKill makes a stuck process print every goroutine's stack to its
// log (Go's SIGQUIT behaviour) and then kills it.
func (n *Node) DumpAndKill() {
	if n.Running() {
		n.note("sending SIGQUIT for a goroutine dump")
		_ = n.signal(syscall.SIGQUIT)
		_, _ = n.Wait(5 * time.Second)
	}
	_ = n.Kill()
}

// Wait waits up to timeout for the process to exit and returns its exit
// code.
func (n *Node) Wait(timeout time.Duration) (int, error) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return -1, fmt.Errorf("%s was never started", n.ID)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode(), nil
	case <-t.C:
		return -1, fmt.Errorf("%s (pid %d) still running after %v", n.ID, cmd.Process.Pid, timeout)
	}
}

func (n *Node) note(format string, args ...any) {
	f, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== jepsen-lite: %s: %s\n", time.Now().Format(time.StampMicro), fmt.Sprintf(format, args...))
}

// probe sends one request to exactly one node: no redirects, no retries.
var probe = &http.Client{
	Timeout:       time.Second,
	Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Status asks the node for /v1/cluster.
func (n *Node) Status(ctx context.Context) (*api.Cluster, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+"/v1/cluster", nil)
	if err != nil {
		return nil, err
	}
	resp, err := probe.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/cluster on %s: %s", n.ID, resp.Status)
	}
	var st api.Cluster
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("decode %s's status: %w", n.ID, err)
	}
	return &st, nil
}

// ErrLeaveUnsupported is returned by Leave when the node has no
// /v1/cluster/leave endpoint.
var ErrLeaveUnsupported = errors.New("POST /v1/cluster/leave is not implemented (404)")

// Leave asks the node to leave the cluster gracefully; the process then
// exits by itself.
func (n *Node) Leave(ctx context.Context) error {
	n.note("POST /v1/cluster/leave")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL()+"/v1/cluster/leave", nil)
	if err != nil {
		return err
	}
	// A leave hands over leadership and waits for the configuration
	// change: give it longer than a probe.
	hc := *probe
	hc.Timeout = 30 * time.Second
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("leave %s: %w", n.ID, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrLeaveUnsupported
	case resp.StatusCode >= 300:
		return fmt.Errorf("leave %s: %s: %s", n.ID, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
