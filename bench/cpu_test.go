package bench

// CPU time per request: throughput on these shared 2-vCPU machines moves
// with whatever else the host runs, but the CPU a request costs each
// process moves much less, so it is the figure to compare two builds by.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/countd/countd/internal/harness"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100
// on Linux's supported architectures).
const userHZ = 100

// cpuProbe samples the CPU time the leader, the other nodes and this
// process (the load generator) have used.
type cpuProbe struct {
	leader    *harness.Process // nil: this process only (the ceiling)
	followers []*harness.Process
}

// cpuSample is the CPU time used so far; ok is false when a node's could
// not be read (it restarted, or /proc is missing).
type cpuSample struct {
	leader, followers, client time.Duration
	ok                        bool
}

// newCPUProbe probes this process and, unless the run is against the
// ceiling, c's nodes with leader as the leader.
func newCPUProbe(c *testCluster, leader *harness.Process, ceiling bool) *cpuProbe {
	if ceiling || c == nil || leader == nil {
		return &cpuProbe{}
	}
	p := &cpuProbe{leader: leader}
	for _, n := range c.Nodes {
		if n != leader {
			p.followers = append(p.followers, n)
		}
	}
	return p
}

func (p *cpuProbe) sample() cpuSample {
	var s cpuSample
	if p == nil {
		return s
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return s
	}
	s.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if p.leader == nil {
		s.ok = true
		return s
	}
	var err error
	if s.leader, err = processCPU(p.leader.PID()); err != nil {
		return s
	}
	for _, f := range p.followers {
		d, err := processCPU(f.PID())
		if err != nil {
			return s
		}
		s.followers += d
	}
	s.ok = true
	return s
}

// processCPU is the user and system CPU time process pid has used, all its
// threads included.
func processCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, fmt.Errorf("not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may hold spaces, so fields are counted after its closing parenthesis.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat line %q", stat)
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("CPU time %q: %w", s, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// perRequest is the CPU each process used per request between a and b, in
// microseconds; ok is false without both samples.
func perRequest(a, b cpuSample, requests int) (leader, followers, client float64, ok bool) {
	if !a.ok || !b.ok || requests == 0 {
		return 0, 0, 0, false
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(requests) }
	return us(b.leader - a.leader), us(b.followers - a.followers), us(b.client - a.client), true
}

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis, as /proc shows it.
	line := "4242 (count d) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 123 456 789"
	d, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; d != want {
		t.Errorf("CPU time %v, want %v (utime 250 + stime 75 ticks)", d, want)
	}
	for _, bad := range []string{"", "4242 (countd S 1", "4242 (countd) S 1 2 3", "4242 (countd) S 1 4242 4242 0 -1 4194560 1234 0 0 0 x 75"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q) gave no error", bad)
		}
	}
	if own, err := processCPU(os.Getpid()); err != nil || own < 0 {
		t.Errorf("this process's CPU time: %v, %v", own, err)
	}
}
