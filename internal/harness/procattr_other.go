//go:build !linux

package harness

import "syscall"

// ProcAttr is nil where children cannot be tied to their parent's death.
func ProcAttr() *syscall.SysProcAttr { return nil }
