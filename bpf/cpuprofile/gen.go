package cpuprofile

//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target bpfel -type sample_key -type event -type proc -type mapping -type file_info -type page_info -type rule -type ustack -type py_proc -type pystack -type offcpu_key -type offcpu_value -type offcpu_rec -go-package cpuprofile cpuprofile cpuprofile.bpf.c -- -I../include
