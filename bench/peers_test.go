package bench

// The peers: a 3-server ZooKeeper ensemble and a 3-member etcd cluster on
// 127.0.0.1, started on first use when COUNTD_BENCH_PEERS=1 and measured
// by the same loop and client machinery as countd, so the summary can give
// countd's throughput as a ratio to theirs from the same run on the same
// machine. Both fsync every write, as countd does.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/countd/countd/internal/harness"
)

// Where the Debian packages put ZooKeeper. zookeeper.jar's manifest
// Class-Path names its dependencies but no SLF4J binding: without
// slf4j-simple the servers would log nothing.
const (
	zkJar         = "/usr/share/java/zookeeper.jar"
	zkSLF4JSimple = "/usr/share/java/slf4j-simple.jar"
)

// peersWanted reports whether BenchmarkMint measures ZooKeeper and etcd
// too (COUNTD_BENCH_PEERS=1, as make bench-peers sets; it installs
// etcd-server if missing). They mint IDs the way their users would:
// ZooKeeper by creating a sequential znode (the ID is its sequence
// number), etcd by a put through its JSON gateway (the ID is the store's
// revision), each sent as countd's requests are: back to back from every
// client goroutine, every answer checked, and etcd's puts to the leader.
func peersWanted() bool { return os.Getenv("COUNTD_BENCH_PEERS") == "1" }

// runZooKeeper mints by creating persistent sequential znodes under a
// fresh parent, each client goroutine in its own session, as independent
// ZooKeeper clients would.
func runZooKeeper(b *testing.B, clients int) {
	zkp, _, err := thePeers()
	if err != nil {
		recordFailure(b.Name())
		b.Fatal(err)
	}
	conns, err := zkSessions(zkp.clientAddrs(), clients)
	if err != nil {
		recordFailure(b.Name())
		b.Fatal(err)
	}
	// Closing a session is a write too: done before the next run starts.
	defer closeZK(conns)
	acl := zk.WorldACL(zk.PermAll)
	parent := "/" + runKey(b)
	if _, err := conns[0].Create(parent, nil, 0, acl); err != nil {
		recordFailure(b.Name())
		b.Fatalf("zookeeper: create %s: %v", parent, err)
	}
	prefix := parent + "/id-"
	do := one(func(client int) (mint, string, error) {
		path, err := conns[client].Create(prefix, nil, zk.FlagSequence, acl)
		if err != nil {
			return mint{}, err.Error(), fmt.Errorf("zookeeper: create %s: %w", prefix, err)
		}
		seq, err := zkSequence(path, prefix)
		if err != nil {
			return mint{}, "bad path", err
		}
		// Numbered from 0 by the fresh parent; countd's IDs start at 1.
		return mint{first: seq + 1, count: 1}, "", nil
	})
	// Only creates happen under the parent, so its children are numbered
	// 0…N-1 without gaps when all succeed.
	measure(b, result{name: b.Name(), clients: clients, count: 1, peer: zkp.name}, do,
		verify{what: parent, complete: true, dead: zkp.dead})
}

// zkSequence is the sequence number ZooKeeper appended to prefix: the 10
// digits that end the created path.
func zkSequence(path, prefix string) (int64, error) {
	digits, ok := strings.CutPrefix(path, prefix)
	if !ok || len(digits) != 10 {
		return 0, fmt.Errorf("zookeeper: created %q, want %s and 10 digits", path, prefix)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("zookeeper: created %q, want %s and 10 digits", path, prefix)
	}
	return n, nil
}

// zkSessions opens n sessions, each given all three servers (the client
// picks one at random, as ZooKeeper clients do), and waits until
// every one is established, so that no run measures session setup.
func zkSessions(servers []string, n int) ([]*zk.Conn, error) {
	conns := make([]*zk.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { conns[i], errs[i] = zkSession(servers) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeZK(conns)
		return nil, err
	}
	return conns, nil
}

// zkSession opens one session and waits for ZooKeeper to grant it.
func zkSession(servers []string) (*zk.Conn, error) {
	// The client logs every connect and disconnect; failures reach the
	// benchmark as errors anyway.
	conn, events, err := zk.Connect(servers, 15*time.Second, zk.WithLogger(zkQuiet{}))
	if err != nil {
		return nil, fmt.Errorf("zookeeper: connect to %s: %w", strings.Join(servers, ","), err)
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				// Later events are dropped by the client when nobody
				// reads them, which is fine: a lost session shows up
				// as failed requests.
				return conn, nil
			}
		case <-timeout.C:
			st := conn.State()
			conn.Close()
			return nil, fmt.Errorf("zookeeper: no session from %s within 30s (state %v)", strings.Join(servers, ","), st)
		}
	}
}

// closeZK closes sessions concurrently: each Close waits for the server's
// answer, up to a second.
func closeZK(conns []*zk.Conn) {
	var wg sync.WaitGroup
	for _, c := range conns {
		if c != nil {
			wg.Go(c.Close)
		}
	}
	wg.Wait()
}

// zkQuiet drops the ZooKeeper client's log.
type zkQuiet struct{}

func (zkQuiet) Printf(string, ...any) {}

// runEtcd mints by putting a fresh key per request through etcd's v3 JSON
// gateway on the leader; the ID is the revision the put created.
func runEtcd(b *testing.B, clients int) {
	_, ep, err := thePeers()
	if err != nil {
		recordFailure(b.Name())
		b.Fatal(err)
	}
	leader, err := ep.etcdLeader(10 * time.Second)
	if err != nil {
		recordFailure(b.Name())
		b.Fatal(err)
	}
	url := leader + "/v3/kv/put"
	prefix := runKey(b) + "/"
	var n atomic.Int64
	do := one(func(int) (mint, string, error) {
		return etcdPut(ep.http, url, prefix+strconv.FormatInt(n.Add(1), 10))
	})
	// Revisions count every write of the cluster, so only uniqueness is
	// checked, not where they start.
	measure(b, result{name: b.Name(), clients: clients, count: 1, peer: ep.name}, do,
		verify{what: prefix, complete: false, dead: ep.dead})
}

// etcdValue is what every put stores: the IDs are the revisions, the value
// only has to exist.
var etcdValue = []byte("1")

// etcdPut puts key and returns the revision it created.
func etcdPut(hc *http.Client, url, key string) (m mint, kind string, err error) {
	// []byte fields marshal as base64, as the gateway wants bytes fields.
	body, err := json.Marshal(struct {
		Key   []byte `json:"key"`
		Value []byte `json:"value"`
	}{[]byte(key), etcdValue})
	if err != nil {
		return m, "request", fmt.Errorf("etcd: encode put of %s: %w", key, err)
	}
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return m, "transport", err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return m, "read body", fmt.Errorf("etcd: %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return m, resp.Status, fmt.Errorf("etcd: put %s: %s: %s", key, resp.Status, bytes.TrimSpace(answer))
	}
	var res struct {
		Header etcdHeader `json:"header"`
	}
	if err := json.Unmarshal(answer, &res); err != nil {
		return m, "bad json", fmt.Errorf("etcd: put %s: %w: %s", key, err, answer)
	}
	rev, err := strconv.ParseInt(res.Header.Revision, 10, 64)
	if err != nil || rev <= 0 {
		return m, "no revision", fmt.Errorf("etcd: put %s: no revision in %s", key, answer)
	}
	return mint{first: rev, count: 1}, "", nil
}

// etcdHeader is the response header of etcd's JSON gateway, which writes
// 64-bit integers as strings.
type etcdHeader struct {
	MemberID string `json:"member_id"`
	Revision string `json:"revision"`
}

// etcdStatus is the part of POST /v3/maintenance/status the benchmark
// reads.
type etcdStatus struct {
	Header  etcdHeader `json:"header"`
	Leader  string     `json:"leader"`
	Version string     `json:"version"`
}

// etcdMemberStatus asks one member for its status.
func etcdMemberStatus(hc *http.Client, base string) (etcdStatus, error) {
	var st etcdStatus
	resp, err := hc.Post(base+"/v3/maintenance/status", "application/json", strings.NewReader("{}"))
	if err != nil {
		return st, fmt.Errorf("etcd: status of %s: %w", base, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return st, fmt.Errorf("etcd: status of %s: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("etcd: status of %s: %s: %s", base, resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("etcd: status of %s: %w: %s", base, err, body)
	}
	return st, nil
}

// etcdLeader waits (up to timeout) for a member that says it leads, and
// returns its client URL. Asked before every run, like countd's leader, so
// that a leadership change between runs does not send a run through a
// follower's forwarding.
func (p *peer) etcdLeader(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		var errs []error
		for _, s := range p.servers {
			base := "http://" + s.client
			st, err := etcdMemberStatus(p.probe, base)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if st.Leader != "" && st.Leader != "0" && st.Leader == st.Header.MemberID {
				return base, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("etcd: no member says it leads after %v: %w", timeout, errors.Join(errs...))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// peer is one peer's three servers on loopback.
type peer struct {
	name    string // as the summary names it: "ZooKeeper", "etcd"
	version string // as the servers report it
	dir     string // every server's data, config and log
	servers []*peerServer
	http    *http.Client // etcd's puts: the client countd's benchmarks use
	// probe asks for health and status: short timeouts, so a hung server
	// cannot hold a wait past its deadline.
	probe *http.Client
}

// peerServer is one server process of a peer.
type peerServer struct {
	name    string // "zookeeper server.1", "etcd e1"
	client  string // 127.0.0.1:port its clients connect to
	logPath string
	proc    *harness.Child
}

// startPeerServer starts bin in its own process group (so a kill of the
// group also gets anything it spawned), its output into logPath.
func startPeerServer(name, client, dir, logPath, bin string, args []string) (*peerServer, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== bench: %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	proc, err := harness.StartChild(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &peerServer{name: name, client: client, logPath: logPath, proc: proc}, nil
}

// kill SIGKILLs the server's process group and waits until it is reaped:
// the data is thrown away, so a clean shutdown buys nothing.
func (s *peerServer) kill() error {
	if err := s.proc.Kill(10 * time.Second); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	return nil
}

// clientAddrs are the servers' client addresses.
func (p *peer) clientAddrs() []string {
	addrs := make([]string, len(p.servers))
	for i, s := range p.servers {
		addrs[i] = s.client
	}
	return addrs
}

// dead names the servers that have exited.
func (p *peer) dead() []string {
	var dead []string
	for _, s := range p.servers {
		if st := s.proc.ExitState(); st != "" {
			dead = append(dead, s.name+" ("+st+")")
		}
	}
	return dead
}

// stop kills every server and removes the peer's directory, unless
// COUNTD_BENCH_KEEP is set; with showLogs it first prints each server's
// log tail.
func (p *peer) stop(w io.Writer, showLogs bool) error {
	var errs []error
	for _, s := range p.servers {
		errs = append(errs, s.kill())
	}
	err := errors.Join(errs...)
	if showLogs || err != nil {
		p.printLogTails(w, 40)
	}
	if os.Getenv("COUNTD_BENCH_KEEP") != "" {
		fmt.Fprintf(w, "bench: COUNTD_BENCH_KEEP is set; %s's logs and data kept in %s\n", p.name, p.dir)
		return err
	}
	return errors.Join(err, os.RemoveAll(p.dir))
}

// printLogTails prints the end of every server's log.
func (p *peer) printLogTails(w io.Writer, lines int) {
	for _, s := range p.servers {
		fmt.Fprintf(w, "--- last %d lines of %s (%s)\n%s\n", lines, s.name, s.logPath, harness.LogTail(s.logPath, lines))
	}
}

// waitFor polls cond until it holds, a server exits or timeout passes;
// cond's last error explains a timeout.
func (p *peer) waitFor(what string, timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if dead := p.dead(); len(dead) > 0 {
			return fmt.Errorf("%s: waiting for %s: exited: %s", p.name, what, strings.Join(dead, ", "))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %s within %v: %w", p.name, what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	peersOnce sync.Once
	// zkPeer and etcdPeer are the peers once started (possibly only
	// partly, after an error), for stopPeers to stop.
	zkPeer, etcdPeer *peer
	peersErr         error
)

// thePeers starts ZooKeeper and etcd on first use, so that runs which do
// not measure them (no COUNTD_BENCH_PEERS, or a -bench pattern without
// the peers) neither wait for them nor share the CPUs with them.
func thePeers() (zkp, ep *peer, err error) {
	peersOnce.Do(func() {
		zkPeer, peersErr = startZooKeeper()
		if peersErr == nil {
			etcdPeer, peersErr = startEtcd()
		}
		// On error every peer run fails with it, and stopPeers
		// shows the servers' logs at the end.
	})
	return zkPeer, etcdPeer, peersErr
}

// stopPeers stops whatever thePeers started; TestMain calls it after the
// benchmarks. failed prints the servers' log tails first.
func stopPeers(w io.Writer, failed bool) error {
	var errs []error
	for _, p := range []*peer{zkPeer, etcdPeer} {
		if p != nil {
			errs = append(errs, p.stop(w, failed))
		}
	}
	return errors.Join(errs...)
}

// newPeer makes the directory of a peer's servers.
func newPeer(name string) (*peer, error) {
	dir, err := os.MkdirTemp("", "countd-bench-"+strings.ToLower(name)+"-*")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	probe := newHTTPClient(nil)
	probe.Timeout = 5 * time.Second
	return &peer{name: name, dir: dir, http: newHTTPClient(nil), probe: probe}, nil
}

// freePorts returns n loopback ports from harness.FreePort.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		var err error
		if ports[i], err = harness.FreePort(); err != nil {
			return nil, err
		}
	}
	return ports, nil
}

// startZooKeeper starts a 3-server ensemble on 127.0.0.1 and waits until
// it has a leader and two followers. On error the partly started peer is
// returned, for its logs and to be stopped.
func startZooKeeper() (*peer, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("zookeeper: no Java runtime: %w (install the Debian package zookeeper, or run make bench-peers)", err)
	}
	for _, f := range []string{zkJar, zkSLF4JSimple} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("zookeeper: %w (install the Debian package zookeeper, or run make bench-peers)", err)
		}
	}
	p, err := newPeer("ZooKeeper")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(9)
	if err != nil {
		return p, fmt.Errorf("zookeeper: %w", err)
	}
	var lines strings.Builder
	for i := range 3 {
		// The client address names 127.0.0.1 too: with only a port,
		// ZooKeeper would listen on every interface.
		fmt.Fprintf(&lines, "server.%d=127.0.0.1:%d:%d;127.0.0.1:%d\n", i+1, ports[3*i+1], ports[3*i+2], ports[3*i])
	}
	for i := range 3 {
		id := i + 1
		dir := filepath.Join(p.dir, fmt.Sprintf("zk%d", id))
		data := filepath.Join(dir, "data")
		tmp := filepath.Join(dir, "tmp")
		for _, d := range []string{data, tmp} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return p, fmt.Errorf("zookeeper: %w", err)
			}
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(id)+"\n"), 0o644); err != nil {
			return p, fmt.Errorf("zookeeper: %w", err)
		}
		// ZooKeeper's defaults otherwise, forceSync=yes among them: every
		// write is fsynced before it is acknowledged, as countd's are.
		cfg := fmt.Sprintf("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\n", data) +
			// Every session comes from 127.0.0.1, up to 256 of them; the
			// default allows 60 per address and server.
			"maxClientCnxns=0\n" +
			"4lw.commands.whitelist=*\n" +
			// The AdminServer (Jetty) would listen on 0.0.0.0:8080.
			"admin.enableServer=false\n" +
			lines.String()
		cfgPath := filepath.Join(dir, "zoo.cfg")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			return p, fmt.Errorf("zookeeper: %w", err)
		}
		args := []string{
			// ZooKeeper's own default heap (zkEnv.sh); JIT and collector
			// as shipped, since this measures the server at its best.
			"-Xmx1000m",
			// Nothing written outside the peer's directory: no
			// /tmp/hsperfdata_*, crash files next to the log.
			"-XX:-UsePerfData",
			"-XX:ErrorFile=" + filepath.Join(dir, "hs_err_pid%p.log"),
			"-Djava.io.tmpdir=" + tmp,
			"-Dzookeeper.log.dir=" + dir,
			// All addresses are IPv4 loopback.
			"-Djava.net.preferIPv4Stack=true",
			"-cp", zkJar + string(os.PathListSeparator) + zkSLF4JSimple,
			// QuorumPeerMain directly: zkServer.sh would read
			// /etc/zookeeper and log to /var/log/zookeeper.
			"org.apache.zookeeper.server.quorum.QuorumPeerMain", cfgPath,
		}
		client := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i]))
		s, err := startPeerServer(fmt.Sprintf("zookeeper server.%d", id), client, dir, filepath.Join(dir, "zookeeper.log"), java, args)
		if err != nil {
			return p, err
		}
		p.servers = append(p.servers, s)
	}
	err = p.waitFor("leader with two followers", 90*time.Second, func() error {
		var leaders, followers int
		for _, s := range p.servers {
			mode, version, err := zkSrvr(s.client)
			if err != nil {
				return err
			}
			switch mode {
			case "leader":
				leaders++
			case "follower":
				followers++
			}
			p.version = version
		}
		if leaders != 1 || followers != 2 {
			return fmt.Errorf("%d leaders, %d followers", leaders, followers)
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	if err := warmZooKeeper(p, 10*time.Second); err != nil {
		return p, err
	}
	fmt.Fprintf(os.Stderr, "bench: ZooKeeper %s ensemble up on %s, JIT warmed by 10s of creates (data and logs in %s)\n", p.version, strings.Join(p.clientAddrs(), ", "), p.dir)
	return p, nil
}

// warmZooKeeper creates znodes from 64 sessions for d before the first
// measured run. ZooKeeper runs on the JVM, which compiles its hot paths
// only after thousands of requests: cold, it minted 1.5× slower at one
// client than a few thousand requests later. countd and etcd are compiled
// ahead of time and need no warm-up.
func warmZooKeeper(p *peer, d time.Duration) error {
	conns, err := zkSessions(p.clientAddrs(), 64)
	if err != nil {
		return fmt.Errorf("zookeeper warm-up: %w", err)
	}
	defer closeZK(conns)
	acl := zk.WorldACL(zk.PermAll)
	if _, err := conns[0].Create("/warmup", nil, 0, acl); err != nil {
		return fmt.Errorf("zookeeper warm-up: create /warmup: %w", err)
	}
	end := time.Now().Add(d)
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for time.Now().Before(end) {
				if _, err := c.Create("/warmup/id-", nil, zk.FlagSequence, acl); err != nil {
					errs[i] = fmt.Errorf("zookeeper warm-up: create /warmup/id-: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// zkSrvr sends the four-letter word srvr and returns the server's mode
// ("leader", "follower") and version, or an error while it does not
// serve (during an election it answers without a Mode).
func zkSrvr(addr string) (mode, version string, err error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", "", fmt.Errorf("srvr to %s: %w", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
		return "", "", fmt.Errorf("srvr to %s: %w", addr, err)
	}
	if _, err := io.WriteString(conn, "srvr"); err != nil {
		return "", "", fmt.Errorf("srvr to %s: %w", addr, err)
	}
	// The server closes the connection after answering.
	out, err := io.ReadAll(conn)
	if err != nil {
		return "", "", fmt.Errorf("srvr to %s: %w", addr, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Zookeeper version: "); ok {
			version, _, _ = strings.Cut(v, "-") // "3.8.0-debian--1, built on …"
		}
		if m, ok := strings.CutPrefix(line, "Mode: "); ok {
			mode = strings.TrimSpace(m)
		}
	}
	if mode == "" {
		return "", "", fmt.Errorf("srvr to %s answered without a Mode: %q", addr, strings.TrimSpace(string(out)))
	}
	return mode, version, nil
}

// startEtcd starts a 3-member etcd cluster on 127.0.0.1 and waits until
// every member reports itself healthy. On error the partly started peer is
// returned, for its logs and to be stopped.
func startEtcd() (*peer, error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, fmt.Errorf("etcd: %w (install the Debian package etcd-server, or run make bench-peers)", err)
	}
	p, err := newPeer("etcd")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(6)
	if err != nil {
		return p, fmt.Errorf("etcd: %w", err)
	}
	peerURL := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]) }
	var initial []string
	for i := range 3 {
		initial = append(initial, fmt.Sprintf("e%d=%s", i+1, peerURL(i)))
	}
	for i := range 3 {
		name := fmt.Sprintf("e%d", i+1)
		dir := filepath.Join(p.dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return p, fmt.Errorf("etcd: %w", err)
		}
		client := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2*i]))
		args := []string{
			"--name", name,
			"--data-dir", filepath.Join(dir, "data"),
			"--listen-peer-urls", peerURL(i),
			"--initial-advertise-peer-urls", peerURL(i),
			"--listen-client-urls", "http://" + client,
			"--advertise-client-urls", "http://" + client,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			// Unique per run, so members of another cluster can never
			// join this one.
			"--initial-cluster-token", filepath.Base(p.dir),
			// zap: etcd 3.4's default logger is deprecated and warns so.
			"--logger", "zap", "--log-outputs", "stderr",
		}
		s, err := startPeerServer("etcd "+name, client, dir, filepath.Join(dir, "etcd.log"), bin, args)
		if err != nil {
			return p, err
		}
		p.servers = append(p.servers, s)
	}
	err = p.waitFor("healthy members", 60*time.Second, func() error {
		for _, s := range p.servers {
			if err := etcdHealthy(p.probe, "http://"+s.client); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	st, err := etcdMemberStatus(p.probe, "http://"+p.servers[0].client)
	if err != nil {
		return p, err
	}
	p.version = st.Version
	fmt.Fprintf(os.Stderr, "bench: etcd %s cluster up on %s (data and logs in %s)\n", p.version, strings.Join(p.clientAddrs(), ", "), p.dir)
	return p, nil
}

// etcdHealthy asks a member's GET /health, which says "true" once the
// member has a leader and can commit.
func etcdHealthy(hc *http.Client, base string) error {
	resp, err := hc.Get(base + "/health")
	if err != nil {
		return fmt.Errorf("etcd: health of %s: %w", base, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("etcd: health of %s: %w", base, err)
	}
	var h struct {
		Health string `json:"health"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil || h.Health != "true" {
		return fmt.Errorf("etcd: health of %s: %s: %s", base, resp.Status, bytes.TrimSpace(body))
	}
	return nil
}
