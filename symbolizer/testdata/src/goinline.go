package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
)

var sink uintptr

func leaf(n int) int {
	pc, _, _, _ := runtime.Caller(0) // MARK0
	sink = pc
	return n * 3
}

func middle(n int) int {
	return leaf(n) + 1 // MARK1
}

func outer(n int) int {
	return middle(n) * 2 // MARK2
}

//go:noinline
func run() int {
	return outer(len(os.Args))
}

func main() {
	_ = run()
	fmt.Printf("0 %#x\nready\n", sink+1)
	_, _ = bufio.NewReader(os.Stdin).ReadString(0)
}
