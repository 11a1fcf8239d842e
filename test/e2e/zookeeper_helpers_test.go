//go:build linux

// The ZooKeeper harness is Linux-only: it runs the Debian zookeeper package,
// binds 127.0.0.2 and 127.0.0.3 (only Linux routes all of 127.0.0.0/8 to
// loopback without aliases) and kills by process group. Tests that use it
// need the same build constraint.

package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countd/countd/internal/harness"
)

// Where the Debian packages put ZooKeeper. zookeeper.jar's manifest
// Class-Path names every dependency, but no SLF4J binding: without
// slf4j-simple the server would log nothing at all.
const (
	zkJar         = "/usr/share/java/zookeeper.jar"
	zkSLF4JSimple = "/usr/share/java/slf4j-simple.jar"
)

// zkServer is one ZooKeeper server of a test ensemble on loopback.
type zkServer struct {
	Host         string // loopback IP it binds, e.g. "127.0.0.2" (distinct per server)
	ClientPort   int
	QuorumPort   int
	ElectionPort int
	DataDir      string // holds myid (written by the caller, NOT by the helper)
}

// clientAddr is where zkSrvr reaches the server.
func (s zkServer) clientAddr() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.ClientPort))
}

// zkRuntime is how to run a ZooKeeper server on this machine.
type zkRuntime struct {
	java      string
	classpath string
}

// zkInstalled reports whether the Debian zookeeper package and a Java
// runtime are usable, and how to run them. It only looks at files, and the
// answer is cached: it cannot change during one test run.
var zkInstalled = sync.OnceValues(func() (zkRuntime, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return zkRuntime{}, fmt.Errorf("no Java runtime: %w", err)
	}
	if _, err := os.Stat(zkJar); err != nil {
		return zkRuntime{}, fmt.Errorf("no ZooKeeper server jar: %w", err)
	}
	cp := zkJar
	if _, err := os.Stat(zkSLF4JSimple); err == nil {
		cp += string(os.PathListSeparator) + zkSLF4JSimple
	}
	return zkRuntime{java: java, classpath: cp}, nil
})

// requireZooKeeper skips the test when ZooKeeper is not installed, so a
// developer without it can still run the suite; with COUNTD_REQUIRE_ZK=1
// (for the Makefile to set) it fails instead, so CI can never pass by
// skipping.
func requireZooKeeper(t *testing.T) {
	t.Helper()
	if _, err := zkInstalled(); err != nil {
		msg := fmt.Sprintf("ZooKeeper is not usable: %v (install the Debian packages zookeeper and default-jre-headless)", err)
		if os.Getenv("COUNTD_REQUIRE_ZK") == "1" {
			t.Fatal(msg + "; COUNTD_REQUIRE_ZK=1 forbids skipping")
		}
		t.Skip(msg)
	}
}

// zkProc is a running ZooKeeper server started by startZKServer.
type zkProc struct {
	server    zkServer
	myid      int
	dir       string // zoo.cfg, log, JVM temp dir; not the data dir
	logPath   string
	jvm       *harness.Child
	tailShown atomic.Bool // the log tail was already logged; don't repeat it at cleanup
}

// zkProcs maps a server's client address to its process, so that
// waitZKEnsemble, which only gets zkServer values, can report logs and
// early exits. harness.FreePort never hands out a port twice, so only a restart of
// the same server reuses a key, and then the newest process wins.
var zkProcs sync.Map // string -> *zkProc

// lookupZKProc is the process startZKServer last started for s, or nil.
func lookupZKProc(s zkServer) *zkProc {
	if p, ok := zkProcs.Load(s.clientAddr()); ok {
		return p.(*zkProc)
	}
	return nil
}

// exitState describes how the JVM ended ("" while it runs).
func (p *zkProc) exitState() string { return p.jvm.ExitState() }

// kill SIGKILLs the server's process group (the JVM leads its own, so
// anything it spawned goes too) and waits for the JVM to be reaped. The
// data is throwaway, so there is no point in a clean shutdown.
func (p *zkProc) kill() error {
	if err := p.jvm.Kill(10 * time.Second); err != nil {
		return fmt.Errorf("zookeeper server.%d: %w", p.myid, err)
	}
	return nil
}

// logTail returns the last lines of the server's log.
func (p *zkProc) logTail(lines int) string { return harness.LogTail(p.logPath, lines) }

// zkLine is what the harness understands of a "server.N=" value:
// host:quorumPort:electionPort[:role][;[clientHost:]clientPort].
type zkLine struct {
	host                     string
	quorumPort, electionPort int
	clientHost               string // "" if the line names no client host
	clientPort               int    // 0 if the line has no ";" part
}

// parseZKLine parses the value of a "server.N=" line.
func parseZKLine(v string) (zkLine, error) {
	var l zkLine
	addrs, client, hasClient := strings.Cut(strings.TrimSpace(v), ";")
	f := strings.Split(addrs, ":")
	if len(f) < 3 || len(f) > 4 {
		return l, fmt.Errorf("want host:quorumPort:electionPort[:role], got %q", addrs)
	}
	var err1, err2 error
	l.host = f[0]
	l.quorumPort, err1 = strconv.Atoi(f[1])
	l.electionPort, err2 = strconv.Atoi(f[2])
	if err := errors.Join(err1, err2); err != nil {
		return l, err
	}
	if hasClient {
		port := client
		if h, p, ok := strings.Cut(client, ":"); ok {
			l.clientHost, port = h, p
		}
		var err error
		if l.clientPort, err = strconv.Atoi(port); err != nil {
			return l, fmt.Errorf("client port: %w", err)
		}
	}
	return l, nil
}

// ownZKLine finds the "server.<myid>=" line and parses it.
func ownZKLine(serverLines string, myid int) (zkLine, error) {
	want := "server." + strconv.Itoa(myid)
	for _, line := range strings.Split(serverLines, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && strings.TrimSpace(k) == want {
			l, err := parseZKLine(v)
			if err != nil {
				return l, fmt.Errorf("%s: %w", strings.TrimSpace(line), err)
			}
			return l, nil
		}
	}
	return zkLine{}, fmt.Errorf("no %s= line", want)
}

// readMyid reads the myid the caller wrote; the harness needs it to find
// the server's own line, and ZooKeeper would refuse to start without it.
func readMyid(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "myid"))
	if err != nil {
		return 0, err
	}
	id, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("myid: %w", err)
	}
	return id, nil
}

// startZKServer writes a zoo.cfg for s into its own conf dir (under
// t.TempDir()), with the given serverLines (the "server.N=host:q:e[;clientport]"
// lines, verbatim, as countd produced them) and starts the server as a child
// process, killed in t.Cleanup. Logs go to a file under the test's temp dir;
// on test failure their tail is printed.
//
// When the server's own line has a client part, zoo.cfg has no clientPort,
// so ZooKeeper takes its client address from countd's line alone. Without
// one, the harness adds clientPort and clientPortAddress from s.
func startZKServer(t *testing.T, s zkServer, serverLines string) *zkProc {
	t.Helper()
	requireZooKeeper(t)
	rt, _ := zkInstalled()

	myid, err := readMyid(s.DataDir)
	if err != nil {
		t.Fatalf("zookeeper %s: the caller must write myid into DataDir first: %v", s.clientAddr(), err)
	}
	// Checked here because a mismatch would otherwise only show up as a
	// silent 60 s wait on the wrong address.
	own, err := ownZKLine(serverLines, myid)
	if err != nil {
		t.Fatalf("zookeeper server.%d: %v in server lines:\n%s", myid, err, serverLines)
	}
	if own.host != s.Host || own.quorumPort != s.QuorumPort || own.electionPort != s.ElectionPort ||
		(own.clientHost != "" && own.clientHost != s.Host) ||
		(own.clientPort != 0 && own.clientPort != s.ClientPort) {
		t.Fatalf("zookeeper server.%d: its line %+v does not match %+v; server lines:\n%s", myid, own, s, serverLines)
	}

	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "# countd e2e harness: server.%d\n", myid)
	// A short tick keeps the ensemble quick to form and to notice a dead
	// peer; initLimit and syncLimit still allow 10 s and 5 s for a JVM
	// stalled on a busy 2-core CI machine.
	cfg.WriteString("tickTime=500\ninitLimit=20\nsyncLimit=10\n")
	fmt.Fprintf(&cfg, "dataDir=%s\n", s.DataDir)
	// Since 3.5 every four-letter word except srvr is off by default.
	cfg.WriteString("4lw.commands.whitelist=srvr,ruok,mntr\n")
	// The AdminServer (Jetty) would listen on 0.0.0.0:8080 in every server.
	cfg.WriteString("admin.enableServer=false\n")
	if own.clientPort == 0 {
		fmt.Fprintf(&cfg, "clientPort=%d\nclientPortAddress=%s\n", s.ClientPort, s.Host)
	} else if own.clientHost == "" {
		t.Logf("zookeeper server.%d: its line gives no client host, so ZooKeeper binds client port %d on all interfaces", myid, s.ClientPort)
	}
	cfg.WriteString(strings.TrimSpace(serverLines) + "\n")
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}

	p := &zkProc{server: s, myid: myid, dir: dir, logPath: filepath.Join(dir, "zookeeper.log")}
	args := []string{
		// Three JVMs share two cores: a small heap, the serial collector
		// and C1 only make them start in well under a second.
		"-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-XX:+ExitOnOutOfMemoryError",
		// Nothing may be written outside the temp dirs: no
		// /tmp/hsperfdata_*, and crash files go next to the log.
		"-XX:-UsePerfData",
		"-XX:ErrorFile=" + filepath.Join(dir, "hs_err_pid%p.log"),
		"-Djava.io.tmpdir=" + tmp,
		// All addresses are IPv4 loopback; CI containers may lack IPv6.
		"-Djava.net.preferIPv4Stack=true",
		"-Dorg.slf4j.simpleLogger.showDateTime=true",
		"-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
		"-cp", rt.classpath,
		// QuorumPeerMain directly rather than zkServer.sh: the script
		// sources /etc/zookeeper/conf/environment, which forces
		// ZOO_LOG_DIR=/var/log/zookeeper and mkdirs it.
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", cfgPath,
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== e2e: %s: %s %s\n=== zoo.cfg:\n%s=== end of zoo.cfg\n",
		time.Now().Format(time.StampMicro), rt.java, strings.Join(args, " "), cfg.String())
	cmd := exec.Command(rt.java, args...)
	cmd.Dir = dir // core dumps and any relative path land in the temp dir
	cmd.Stdout, cmd.Stderr = logf, logf
	jvm, err := harness.StartChild(cmd)
	if err != nil {
		t.Fatalf("start zookeeper server.%d: %v", myid, err)
	}
	p.jvm = jvm
	zkProcs.Store(s.clientAddr(), p)
	t.Logf("zookeeper server.%d: pid %d, client %s, log %s", myid, jvm.Pid(), s.clientAddr(), p.logPath)

	t.Cleanup(func() {
		zkProcs.CompareAndDelete(s.clientAddr(), p)
		if err := p.kill(); err != nil {
			t.Error(err)
		}
		if t.Failed() && !p.tailShown.Load() {
			t.Logf("--- last lines of zookeeper server.%d's log (%s) ---\n%s", myid, p.logPath, p.logTail(60))
		}
	})
	return p
}

// zkFourLetter sends a four-letter command and returns ZooKeeper's whole
// answer; the server closes the connection after answering.
func zkFourLetter(addr, cmd string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(conn, cmd); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

// zkSrvr sends the "srvr" four-letter command to host:clientPort and returns
// the "Mode:" value ("leader", "follower", "standalone") or an error if the
// server is not serving yet.
func zkSrvr(addr string) (mode string, err error) {
	out, err := zkFourLetter(addr, "srvr")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if m, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(m), nil
		}
	}
	// During an election the answer is "This ZooKeeper instance is not
	// currently serving requests".
	return "", fmt.Errorf("srvr answered without a Mode: %q", strings.TrimSpace(out))
}

// waitZKEnsemble polls every server with zkSrvr until exactly one is
// "leader" and the others "follower", or the timeout passes; then it fails
// with each server's last answer and log tail. It fails at once when a
// server's JVM has exited. It returns the modes per server.
func waitZKEnsemble(t *testing.T, servers []zkServer, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	modes := make([]string, len(servers))
	errs := make([]error, len(servers))
	for {
		var wg sync.WaitGroup
		for i, s := range servers {
			wg.Go(func() { modes[i], errs[i] = zkSrvr(s.clientAddr()) })
		}
		wg.Wait()
		if zkFormed(modes, errs) {
			return modes
		}
		exited := ""
		for _, s := range servers {
			if p := lookupZKProc(s); p != nil && p.exitState() != "" {
				exited = fmt.Sprintf("zookeeper server.%d exited (%s)", p.myid, p.exitState())
				break
			}
		}
		if exited != "" || time.Now().After(deadline) {
			why := exited
			if why == "" {
				why = fmt.Sprintf("no single leader with %d followers within %v", len(servers)-1, timeout)
			}
			t.Fatalf("%s:%s", why, zkReport(servers, modes, errs))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// zkFormed reports whether every server answered, one as leader and all
// others as followers.
func zkFormed(modes []string, errs []error) bool {
	leaders := 0
	for i, m := range modes {
		switch {
		case errs[i] != nil:
			return false
		case m == "leader":
			leaders++
		case m != "follower":
			return false
		}
	}
	return leaders == 1
}

// zkReport is each server's last srvr answer and log tail.
func zkReport(servers []zkServer, modes []string, errs []error) string {
	var b strings.Builder
	for i, s := range servers {
		name := s.clientAddr()
		p := lookupZKProc(s)
		if p != nil {
			name = fmt.Sprintf("server.%d (%s)", p.myid, name)
		}
		if errs[i] != nil {
			fmt.Fprintf(&b, "\n  %s: error: %v", name, errs[i])
		} else {
			fmt.Fprintf(&b, "\n  %s: mode %s", name, modes[i])
		}
		if p != nil {
			if st := p.exitState(); st != "" {
				fmt.Fprintf(&b, " (process exited: %s)", st)
			}
		}
	}
	for _, s := range servers {
		if p := lookupZKProc(s); p != nil {
			p.tailShown.Store(true)
			fmt.Fprintf(&b, "\n--- last lines of zookeeper server.%d's log (%s) ---\n%s", p.myid, p.logPath, p.logTail(40))
		}
	}
	return b.String()
}

// waitZKFollowersSynced waits until the leader reports every follower
// synced: modes alone would also fit followers of some other leader.
func waitZKFollowersSynced(t *testing.T, leader zkServer, followers int) {
	t.Helper()
	want := fmt.Sprintf("zk_synced_followers\t%d\n", followers)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := zkFourLetter(leader.clientAddr(), "mntr")
		if err == nil && strings.Contains(out, want) {
			t.Logf("mntr on the leader %s: zk_synced_followers %d", leader.clientAddr(), followers)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader %s does not report %d synced followers: err=%v, mntr:\n%s", leader.clientAddr(), followers, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logSrvr logs each server's own answer to srvr, so a reader of the test
// output sees ZooKeeper's word for the ensemble, and returns the leader.
func logSrvr(t *testing.T, servers []zkServer, modes []string) zkServer {
	t.Helper()
	var leader zkServer
	for i, s := range servers {
		out, err := zkFourLetter(s.clientAddr(), "srvr")
		if err != nil {
			t.Fatalf("srvr %s: %v", s.clientAddr(), err)
		}
		t.Logf("srvr to %s:\n%s", s.clientAddr(), strings.TrimSpace(out))
		if modes[i] == "leader" {
			leader = s
		}
	}
	return leader
}

// TestZooKeeperHarnessFormsEnsemble checks the harness itself against
// hand-written configuration, so that a failure of the countd-driven test
// can be told apart from a harness that cannot run ZooKeeper here.
func TestZooKeeperHarnessFormsEnsemble(t *testing.T) {
	requireZooKeeper(t)
	servers := make([]zkServer, 3)
	var lines []string
	for i := range servers {
		id := i + 1
		s := zkServer{
			Host:         fmt.Sprintf("127.0.0.%d", id),
			ClientPort:   harness.MustFreePort(t),
			QuorumPort:   harness.MustFreePort(t),
			ElectionPort: harness.MustFreePort(t),
			DataDir:      t.TempDir(),
		}
		if err := os.WriteFile(filepath.Join(s.DataDir, "myid"), []byte(strconv.Itoa(id)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		servers[i] = s
		lines = append(lines, fmt.Sprintf("server.%d=%s:%d:%d;%s:%d", id, s.Host, s.QuorumPort, s.ElectionPort, s.Host, s.ClientPort))
	}
	serverLines := strings.Join(lines, "\n")
	for _, s := range servers {
		startZKServer(t, s, serverLines)
	}
	modes := waitZKEnsemble(t, servers, 60*time.Second)
	waitZKFollowersSynced(t, logSrvr(t, servers, modes), 2)
}
