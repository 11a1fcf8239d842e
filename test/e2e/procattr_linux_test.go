package e2e

import "syscall"

// procAttr makes child processes die with the test binary, so a test that
// times out or panics leaves no countd running.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
