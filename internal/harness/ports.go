package harness

// Loopback ports for nodes whose addresses must be known before they start
// (processes, a node's restart, ZooKeeper servers), and an address nothing
// listens on.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

// FreePort returns a loopback port that is free for both TCP and UDP
// (gossip binds both) and was not handed out before in this process. It
// prefers ports below the kernel's ephemeral range, so the many outgoing
// connections of a test cannot take a killed node's port before it
// restarts. The port is free when returned; nothing holds it.
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	lo, hi := 20000, 32767
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if start, err := strconv.Atoi(f[0]); err == nil {
				hi = start - 1
				lo = max(1024, hi-12000)
			}
		}
	}
	if hi-lo >= 1000 {
		for range 2000 {
			p := lo + rand.IntN(hi-lo+1)
			if !usedPorts[p] && portFree(p) {
				usedPorts[p] = true
				return p, nil
			}
		}
	}
	// Fall back to kernel-chosen ports.
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("listen on a free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !usedPorts[p] && portFree(p) {
			usedPorts[p] = true
			return p, nil
		}
	}
	return 0, errors.New("no free loopback port for TCP and UDP")
}

// MustFreePort is FreePort, failing the test on error.
func MustFreePort(tb testing.TB) int {
	tb.Helper()
	p, err := FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func portFree(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	_ = u.Close()
	return true
}

// LoopbackAddr is 127.0.0.1 with a FreePort.
func LoopbackAddr() (string, error) {
	p, err := FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// DeadAddr is the base URL of a loopback address nothing listens on: a
// FreePort, which this process never hands out again.
func DeadAddr(tb testing.TB) string {
	tb.Helper()
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(MustFreePort(tb)))
}
