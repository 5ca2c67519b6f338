package readlat

//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target bpfel -go-package readlat readlat readlat.bpf.c -- -I../include
