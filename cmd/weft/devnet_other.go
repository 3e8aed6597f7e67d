//go:build !linux

package main

import "syscall"

// childProcAttr is how devnet starts a node where Linux's parent-death
// signal does not exist: as any child, which outlives a devnet killed
// outright (devnet still stops its nodes on Ctrl-C, SIGTERM and SIGHUP).
func childProcAttr() *syscall.SysProcAttr { return nil }
