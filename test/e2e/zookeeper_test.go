//go:build linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/internal/harness"
)

// countctl runs the CLI against the cluster and returns its stdout; a
// non-zero exit fails the test with stderr.
func countctl(t *testing.T, c *harness.ProcessCluster, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, countctlBin, append([]string{"-a", urls(c)}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("countctl %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// TestZooKeeperEnsembleFromQueue is the headline use case, done the way the
// README tells a user to: three ZooKeeper hosts each join one countd queue
// (range 1…255, reuse) with their host name, get their myid written to the
// data dir, wait until all three have joined, and render the server lines
// from the queue. Then the three real ZooKeeper servers start and must form
// one ensemble: one leader, two followers, by ZooKeeper's own srvr and mntr.
//
// The three "hosts" share this machine, so each uses its own loopback IP as
// its process ID and, because the issue asks for it, its own ports, passed
// as zk.* tags that zk-config honours per member.
func TestZooKeeperEnsembleFromQueue(t *testing.T) {
	requireZooKeeper(t)
	c := formCluster(t)
	const queue = "zk-ensemble"
	countctl(t, c, "-i", queue, "queue", "config", "--min", "1", "--max", "255", "--reuse")

	servers := make([]zkServer, 3)
	for i := range servers {
		servers[i] = zkServer{
			Host:         fmt.Sprintf("127.0.0.%d", i+1),
			ClientPort:   harness.MustFreePort(t),
			QuorumPort:   harness.MustFreePort(t),
			ElectionPort: harness.MustFreePort(t),
			DataDir:      filepath.Join(t.TempDir(), "zookeeper"), // join creates it
		}
	}

	// Each host runs its part concurrently, as three machines would.
	lines := make([]string, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			countctl(t, c, "-i", queue, "queue", "-p", s.Host, "join",
				"--myid-file", filepath.Join(s.DataDir, "myid"),
				"--tag", "zk.quorum_port="+strconv.Itoa(s.QuorumPort),
				"--tag", "zk.election_port="+strconv.Itoa(s.ElectionPort),
				"--tag", "zk.client_port="+strconv.Itoa(s.ClientPort))
			countctl(t, c, "-i", queue, "queue", "wait", "--members", "3")
			lines[i] = countctl(t, c, "-i", queue, "queue", "zk-config", "--client-port", "2181")
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := range lines {
		if lines[i] != lines[0] {
			t.Fatalf("hosts rendered different server lines:\n%s\nvs\n%s", lines[0], lines[i])
		}
	}
	serverLines := strings.TrimSpace(lines[0])
	t.Logf("countctl queue zk-config:\n%s", serverLines)

	// Every host's myid is its own line's number, and the ids are 1, 2, 3.
	seen := map[int]bool{}
	for _, s := range servers {
		raw, err := os.ReadFile(filepath.Join(s.DataDir, "myid"))
		if err != nil {
			t.Fatal(err)
		}
		id, err := strconv.Atoi(strings.TrimSuffix(string(raw), "\n"))
		if err != nil || !strings.HasSuffix(string(raw), "\n") {
			t.Fatalf("%s: myid file holds %q, want an integer and a newline", s.Host, raw)
		}
		want := fmt.Sprintf("server.%d=%s:%d:%d;%d", id, s.Host, s.QuorumPort, s.ElectionPort, s.ClientPort)
		if !strings.Contains(serverLines+"\n", want+"\n") {
			t.Fatalf("%s has myid %d but the server lines lack %q", s.Host, id, want)
		}
		seen[id] = true
	}
	if !seen[1] || !seen[2] || !seen[3] {
		t.Fatalf("myids %v, want 1, 2 and 3", seen)
	}

	for _, s := range servers {
		startZKServer(t, s, serverLines)
	}
	modes := waitZKEnsemble(t, servers, 60*time.Second)
	waitZKFollowersSynced(t, logSrvr(t, servers, modes), 2)
}
