package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// Memory is a process's resident memory, from /proc/PID/status, in bytes.
type Memory struct {
	// RSS is everything resident (VmRSS).
	RSS int64
	// Anon is the resident anonymous memory (RssAnon): the Go heap and
	// stacks, what a leak grows. RSS also counts file pages the process
	// mapped and touched, such as bolt's memory-mapped log.
	Anon int64
}

// Memory reads the running process's resident memory.
func (p *Process) Memory() (Memory, error) {
	c := p.current()
	if c == nil {
		return Memory{}, fmt.Errorf("%s is not running", p.ID)
	}
	return ReadMemory(c.Pid())
}

// ReadMemory reads process pid's resident memory (Linux only).
func ReadMemory(pid int) (Memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	var m Memory
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 2 {
			continue
		}
		var dst *int64
		switch string(fields[0]) {
		case "VmRSS:":
			dst = &m.RSS
		case "RssAnon:":
			dst = &m.Anon
		default:
			continue
		}
		kb, err := strconv.ParseInt(string(fields[1]), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("pid %d: %s %q: %w", pid, fields[0], fields[1], err)
		}
		*dst = kb << 10
	}
	if m.RSS == 0 {
		return Memory{}, fmt.Errorf("pid %d: no VmRSS in /proc status", pid)
	}
	return m, nil
}
