package symbolizer

import (
	"bytes"
	"debug/elf"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// debugLink is the content of a .gnu_debuglink section.
type debugLink struct {
	name string
	crc  uint32
}

// readDebugLink parses .gnu_debuglink: a file name, NUL, padding to 4
// bytes, then the CRC32 of the debug file.
func (img *elfImage) readDebugLink() (debugLink, bool) {
	b := img.sectionData(".gnu_debuglink", 4096)
	i := bytes.IndexByte(b, 0)
	if i <= 0 {
		return debugLink{}, false
	}
	off := int(align4(uint64(i + 1)))
	if off+4 > len(b) {
		return debugLink{}, false
	}
	name := string(b[:i])
	if name != filepath.Base(name) || name == "." || name == ".." {
		return debugLink{}, false // a link names a file, never a path
	}
	return debugLink{name: name, crc: img.f.ByteOrder.Uint32(b[off:])}, true
}

// buildIDPath is where a debug file for id lives under dir:
// dir/.build-id/ab/cdef....debug.
func buildIDPath(dir, id string) string {
	if len(id) < 4 {
		return ""
	}
	return filepath.Join(dir, ".build-id", id[:2], id[2:]+".debug")
}

// debugLinkPaths lists where a debuglink file is looked for: next to the
// binary, in its .debug folder, and under each debug directory mirroring
// the binary's folder.
func debugLinkPaths(binPath string, dirs []string, name string) []string {
	binDir := filepath.Dir(binPath)
	out := []string{filepath.Join(binDir, name), filepath.Join(binDir, ".debug", name)}
	for _, d := range dirs {
		out = append(out, filepath.Join(d, binDir, name))
	}
	return out
}

// fileCRC32 computes the CRC a debuglink records, over the whole file.
func fileCRC32(f *os.File) (uint32, error) {
	h := crc32.NewIEEE()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62)); err != nil {
		return 0, err
	}
	return h.Sum32(), nil
}

// openDebugFile opens path as an ELF file; wantID, when set, must match its
// build ID and wantCRC, when checkCRC, the CRC of its bytes.
func openDebugFile(path, wantID string, wantCRC uint32, checkCRC bool) (*elfImage, *os.File) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, nil
	}
	if checkCRC {
		if sum, err := fileCRC32(f); err != nil || sum != wantCRC {
			f.Close()
			return nil, nil
		}
	}
	img, err := openELF(f, st.Size())
	if err != nil || (wantID != "" && img.buildID != wantID) {
		f.Close()
		return nil, nil
	}
	return img, f
}

// DebugFile finds the separate debug file of the ELF file read through ra
// (mapped as path, in a process whose root is root): by build ID under each
// of dirs, then through .gnu_debuglink with its CRC checked. It returns nil
// when there is none; otherwise the caller closes the returned closer.
func DebugFile(ra io.ReaderAt, size int64, path, root string, dirs []string) (*elf.File, io.Closer) {
	img, err := openELF(ra, size)
	if err != nil {
		return nil, nil
	}
	if dirs == nil {
		dirs = []string{"/usr/lib/debug"}
	}
	o := &objFile{img: img, path: path, root: root}
	dbg := o.findDebugFile(dirs)
	if dbg == nil || len(o.closers) == 0 {
		return nil, nil
	}
	return dbg.f, o.closers[0]
}
