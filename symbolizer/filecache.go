package symbolizer

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"syscall"
)

// fileKey identifies a file's contents by device, inode, size and
// modification time, so a rebuilt binary at the same inode is not confused
// with the old one.
func fileKey(st os.FileInfo) string {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("i:%x:%x:%x:%x", sys.Dev, sys.Ino, st.Size(), st.ModTime().UnixNano())
}

// adoptFile returns the cached object for f's contents or caches a new one,
// taking one reference for the caller. It takes ownership of f.
func (s *Symbolizer) adoptFile(f *os.File, path, root string) *objFile {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		s.st.openErrors.Add(1)
		return nil
	}
	key := fileKey(st)
	if o := s.refCached(key); o != nil {
		f.Close()
		return o
	}
	img, err := openELF(f, st.Size())
	if err != nil {
		f.Close()
		s.st.parseErrors.Add(1)
		return nil
	}
	o := &objFile{key: key, img: img, closers: []io.Closer{f}, path: path, root: root, dwarfLimit: s.dwarfLimit()}
	return s.insertFile(o)
}

// refCached takes a reference on the cached object with key, nil if none.
func (s *Symbolizer) refCached(key string) *objFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.files[key]
	if o == nil {
		return nil
	}
	o.refs++
	s.fileLRU.MoveToFront(o.elem)
	return o
}

// insertFile caches o under its inode key and build ID unless an object
// with the same contents got there first, in which case o is closed and the
// existing one returned. Either way the caller holds one reference.
func (s *Symbolizer) insertFile(o *objFile) *objFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.files[o.key]; old != nil {
		return s.useExisting(old, o)
	}
	if id := o.img.buildID; id != "" {
		if old := s.files["b:"+id]; old != nil {
			s.files[o.key] = old
			return s.useExisting(old, o)
		}
		s.files["b:"+id] = o
	}
	s.files[o.key] = o
	o.cached, o.refs = true, 1
	o.chargeHeaders(&s.st)
	o.elem = s.fileLRU.PushFront(o)
	s.st.filesOpened.Add(1)
	for s.fileLRU.Len() > s.opts.MaxFiles {
		s.evictFile(s.fileLRU.Back().Value.(*objFile))
	}
	return o
}

func (s *Symbolizer) useExisting(old, dup *objFile) *objFile {
	dup.close()
	old.refs++
	s.fileLRU.MoveToFront(old.elem)
	return old
}

// evictFile drops o from the cache; it is closed once no process uses it.
// Called with s.mu held.
func (s *Symbolizer) evictFile(o *objFile) {
	for k, v := range s.files {
		if v == o {
			delete(s.files, k)
		}
	}
	s.fileLRU.Remove(o.elem)
	o.cached = false
	s.st.fileEvictions.Add(1)
	if o.refs == 0 {
		o.close()
	}
}

// releaseFile drops one reference. Called with s.mu held.
func (s *Symbolizer) releaseFile(o *objFile) {
	o.refs--
	if o.refs <= 0 && !o.cached {
		o.close()
	}
}

// vdsoObject returns the vDSO image of pid, read from its memory once per
// distinct size (the kernel maps one image per ABI into every process).
func (s *Symbolizer) vdsoObject(pid int, m *Mapping) *objFile {
	size := m.Limit - m.Start
	if size == 0 || size > 1<<20 {
		return nil
	}
	s.mu.Lock()
	o, ok := s.vdsos[size]
	s.mu.Unlock()
	if ok {
		return o
	}
	buf := make([]byte, size)
	f, err := os.Open(fmt.Sprintf("%s/%d/mem", s.opts.ProcRoot, pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.ReadAt(buf, int64(m.Start)); err != nil {
		return nil
	}
	img, err := openELF(bytes.NewReader(buf), int64(len(buf)))
	if err != nil {
		return nil
	}
	o = &objFile{key: "vdso", img: img, cached: true, dwarfLimit: s.dwarfLimit()}
	o.chargeHeaders(&s.st)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.vdsos[size]; ok {
		return old
	}
	s.vdsos[size] = o
	return o
}
