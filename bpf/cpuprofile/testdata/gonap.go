//go:build ignore

// A Go workload for the off-CPU tests. One thread (LockOSThread) calls
// napA and napB in turn, each a 2 ms nanosleep system call made from the
// same place at the same stack depth: the two waits are told apart only by
// return addresses, which a walk reads with frame pointers, as it walks Go
// code. It waits for one byte on stdin, runs for argv[1] milliseconds
// (default 1500), then prints "main.napA <ns>" and "main.napB <ns>", the
// time each measured itself blocked.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

var blockedA, blockedB time.Duration

//go:noinline
func nap() {
	ts := syscall.NsecToTimespec(2e6)
	syscall.Nanosleep(&ts, nil)
}

//go:noinline
func napA() {
	t0 := time.Now()
	nap()
	blockedA += time.Since(t0)
}

//go:noinline
func napB() {
	t0 := time.Now()
	nap()
	blockedB += time.Since(t0)
}

func main() {
	ms := 1500
	if len(os.Args) > 1 {
		ms, _ = strconv.Atoi(os.Args[1])
	}
	var go_ [1]byte
	if _, err := os.Stdin.Read(go_[:]); err != nil {
		os.Exit(1)
	}
	runtime.LockOSThread()
	end := time.Now().Add(time.Duration(ms) * time.Millisecond)
	for time.Now().Before(end) {
		napA()
		napB()
	}
	fmt.Printf("main.napA %d\nmain.napB %d\n", blockedA.Nanoseconds(), blockedB.Nanoseconds())
}
