//go:build unix

package server

import "syscall"

// openFilesLimit is how many files the process may have open (Go raises
// the soft limit to the hard one at start); 0 if unknown.
func openFilesLimit() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return int(min(lim.Cur, 1<<30))
}
