package ksyms

//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target bpfel -go-package ksyms ksyms ksyms.bpf.c -- -I../include
