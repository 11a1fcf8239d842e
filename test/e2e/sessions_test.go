package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/countd/countd/internal/harness"
)

// startCountctl starts countctl in its own process group (so its children
// can be cleaned up after it is killed alone) and returns it with a reader
// of its stdout.
func startCountctl(t *testing.T, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(countctlBin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd, bufio.NewScanner(out)
}

// TestKilledEphemeralMemberLosesItsPlace kill -9s a `queue join
// --session-ttl` process: its place must be freed within the TTL bound
// (TTL, plus the leader's 100 ms check and a commit), and the member
// behind it moves up.
func TestKilledEphemeralMemberLosesItsPlace(t *testing.T) {
	c := formCluster(t)
	const ttl = 2 * time.Second
	a, aOut := startCountctl(t, "-a", urls(c), "-i", "zk", "queue", "-p", "host-a", "join", "--session-ttl", ttl.String(), "-o", "text")
	if !aOut.Scan() || strings.TrimSpace(aOut.Text()) != "1" {
		t.Fatalf("host-a's join printed %q", aOut.Text())
	}
	_, bOut := startCountctl(t, "-a", urls(c), "-i", "zk", "queue", "-p", "host-b", "join", "--session-ttl", ttl.String(), "-o", "text")
	if !bOut.Scan() || strings.TrimSpace(bOut.Text()) != "2" {
		t.Fatalf("host-b's join printed %q", bOut.Text())
	}
	if err := a.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	cl := newClient(t, c)
	harness.WaitFor(t, 3*ttl, "host-a's place to be freed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		q, _, err := cl.Queue(ctx, "zk")
		return err == nil && len(q.Members) == 1 && q.Members[0].ProcessID == "host-b" && q.Members[0].Position == 0
	})
	freed := time.Since(killed)
	t.Logf("kill -9 of host-a's countctl: its place was freed %v later (TTL %v); host-b moved to position 0", freed.Round(time.Millisecond), ttl)
	if freed > ttl+1500*time.Millisecond {
		t.Errorf("host-a's place was freed %v after the kill, beyond its TTL of %v plus 1.5 s", freed, ttl)
	}
}

// TestKilledLockHolderIsFollowedWithALargerToken kill -9s a `countctl
// lock` holder; the waiter behind it must get the lock with a larger
// fencing token. The killed holder's command keeps running, as a real one
// would: the token is what lets a guarded resource refuse it.
func TestKilledLockHolderIsFollowedWithALargerToken(t *testing.T) {
	c := formCluster(t)
	dir := t.TempDir()
	tokenA := filepath.Join(dir, "a")
	a, _ := startCountctl(t, "-a", urls(c), "lock", "job", "--ttl", "2s", "--",
		"sh", "-c", `echo "$COUNTD_FENCING_TOKEN" > `+tokenA+`.tmp && mv `+tokenA+`.tmp `+tokenA+` && sleep 60`)
	harness.WaitFor(t, 20*time.Second, "the first holder to run", func() bool {
		_, err := os.Stat(tokenA)
		return err == nil
	})
	_, bOut := startCountctl(t, "-a", urls(c), "lock", "job", "--ttl", "2s", "--", "sh", "-c", `echo "$COUNTD_FENCING_TOKEN"`)
	if err := syscall.Kill(a.Process.Pid, syscall.SIGKILL); err != nil { // countctl alone, not its command
		t.Fatal(err)
	}
	killed := time.Now()
	if !bOut.Scan() {
		t.Fatal("the second holder never ran")
	}
	data, err := os.ReadFile(tokenA)
	if err != nil {
		t.Fatal(err)
	}
	ta, _ := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	tb, err := strconv.ParseUint(strings.TrimSpace(bOut.Text()), 10, 64)
	if err != nil || tb <= ta {
		t.Fatalf("the next holder's token %q is not above the killed holder's %d", bOut.Text(), ta)
	}
	t.Logf("kill -9 of the lock holder (token %d): the next holder ran %v later with token %d", ta, time.Since(killed).Round(time.Millisecond), tb)
}

// TestFourLockProcessesNeverOverlap runs four `countctl lock` processes on
// one lock at once against the cluster: their commands must run one at a
// time, each with a larger fencing token than the one before.
func TestFourLockProcessesNeverOverlap(t *testing.T) {
	c := formCluster(t)
	dir := t.TempDir()
	held, logPath := filepath.Join(dir, "held"), filepath.Join(dir, "log")
	script := `if [ -e ` + held + ` ]; then echo OVERLAP; exit 9; fi
touch ` + held + `; echo "$COUNTD_FENCING_TOKEN" >> ` + logPath + `; sleep 0.3; rm ` + held
	cmds := make([]*exec.Cmd, 4)
	for i := range cmds {
		cmds[i] = exec.Command(countctlBin, "-a", urls(c), "lock", "mutex", "--ttl", "5s", "--", "sh", "-c", script)
		cmds[i].Stderr = os.Stderr
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("holder %d: %v", i, err)
		}
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	tokens := strings.Fields(string(data))
	if len(tokens) != 4 {
		t.Fatalf("%d holders ran, want 4: %q", len(tokens), tokens)
	}
	for i := 1; i < len(tokens); i++ {
		a, _ := strconv.ParseUint(tokens[i-1], 10, 64)
		b, _ := strconv.ParseUint(tokens[i], 10, 64)
		if b <= a {
			t.Fatalf("fencing tokens did not rise from one holder to the next: %v", tokens)
		}
	}
	t.Logf("four countctl lock processes ran one at a time with tokens %v", tokens)
}
