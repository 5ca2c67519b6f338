package symbolizer_test

import (
	"fmt"
	"strings"

	"github.com/vigil-ebpf/vigil/symbolizer"
)

func ExampleParseMaps() {
	maps := "7f1c2a828000-7f1c2a9bd000 r-xp 00028000 fd:01 1316432 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	ms, err := symbolizer.ParseMaps(strings.NewReader(maps))
	if err != nil {
		panic(err)
	}
	loc := symbolizer.Location{Address: 0x7f1c2a829234, Mapping: &ms[0]}
	fmt.Println(ms[0].Path, ms[0].Executable())
	fmt.Println(loc) // no frames: module and file offset
	// Output:
	// /usr/lib/x86_64-linux-gnu/libc.so.6 true
	// libc.so.6+0x29234
}

func ExampleParseKallsyms() {
	k, err := symbolizer.ParseKallsyms(strings.NewReader(
		"ffffffff81002000 t vfs_read\nffffffff81003000 T vfs_write\nffffffffc0a00000 t ext4_read\t[ext4]\n"))
	if err != nil {
		panic(err)
	}
	for _, a := range []uint64{0xffffffff81002010, 0xffffffffc0a00040} {
		loc := k.Lookup(a)
		fmt.Println(loc, loc.Mapping.Path)
	}
	// Output:
	// vfs_read [kernel.kallsyms]
	// ext4_read [ext4]
}
