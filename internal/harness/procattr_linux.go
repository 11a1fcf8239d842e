package harness

import "syscall"

// ProcAttr makes a child process die with the process that started it, so
// a test that times out or panics leaves nothing running.
func ProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
