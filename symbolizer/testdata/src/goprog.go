package main

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
)

//go:noinline
func hotGoFunction(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i * i
	}
	return s
}

func main() {
	pc := reflect.ValueOf(hotGoFunction).Pointer()
	fmt.Printf("0 %#x\nready\n", pc+4)
	_ = hotGoFunction(10)
	_, _ = bufio.NewReader(os.Stdin).ReadString(0)
}
