package cpuprofile

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-ebpf/vigil/symbolizer/unwind"
)

// FuzzELFImage feeds arbitrary bytes through what vigil does with an ELF
// image it reads from another process's memory (the vDSO) or from a file
// it did not build: parse the headers, build the table, lay it out for
// BPF. None of it may panic or allocate without bound, whatever the bytes.
func FuzzELFImage(f *testing.F) {
	if img := selfVDSO(); img != nil {
		f.Add(img)
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ef, err := openELFBytes(b)
		if err != nil {
			return
		}
		_ = loadSegments(ef)
		_ = isGo(ef)
		_ = buildID(ef)
		_ = cfiSize(ef)
		tab, err := buildTable(buildJob{elf: ef})
		if err != nil {
			return
		}
		ids := map[unwind.Rule]uint16{}
		_, _ = buildLayout(tab.Rows, func(r unwind.Rule) (uint16, error) {
			if _, ok := ids[r]; !ok {
				ids[r] = uint16(len(ids) + 1)
			}
			return ids[r], nil
		})
	})
}

// selfVDSO is this process's vDSO image, a real seed.
func selfVDSO() []byte {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !strings.HasSuffix(sc.Text(), "[vdso]") {
			continue
		}
		lo, hi, _ := strings.Cut(strings.Fields(sc.Text())[0], "-")
		start, _ := strconv.ParseUint(lo, 16, 64)
		end, _ := strconv.ParseUint(hi, 16, 64)
		mem, err := os.Open("/proc/self/mem")
		if err != nil || end <= start || end-start > maxVDSOSize {
			return nil
		}
		defer mem.Close()
		img := make([]byte, end-start)
		if _, err := mem.ReadAt(img, int64(start)); err != nil {
			return nil
		}
		return img
	}
	return nil
}
