//go:build !unix

package server

// openFilesLimit is unknown here.
func openFilesLimit() int { return 0 }
