// The pod sandbox's process (the "pause" image): it holds the pod's namespaces open, reaps orphans when it is
// PID 1 of a shared process namespace, and exits on SIGINT or SIGTERM. Built static with Go (no C compiler on
// a fresh machine) and packaged by build.sh, because no registry is reachable to pull registry.k8s.io/pause.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
