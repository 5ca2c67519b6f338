// Package histtest is a test-only BPF program that runs hist.bpf.h in the
// kernel on values chosen by bpf/histmap's tests.
package histtest

//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target bpfel -go-package histtest histtest histtest.bpf.c -- -I../../../include
