package main

import "syscall"

// childProcAttr is how devnet starts a node on Linux: in a process group
// of its own, so that the terminal's Ctrl-C reaches devnet alone, which
// stops the nodes in order; and with SIGKILL as its parent-death signal,
// so that a devnet killed outright takes its nodes with it. The signal is
// tied to the thread that starts the child: see spawner.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
