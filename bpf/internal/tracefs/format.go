package tracefs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits on a format file. Real ones are a few kilobytes with at most a few
// dozen fields; anything larger is not a format file.
const (
	maxFormatBytes = 64 << 10
	maxFields      = 256
	maxLineBytes   = 4 << 10
)

// Field is one member of a tracepoint record.
type Field struct {
	Name   string
	Type   string // C declaration without the name, e.g. "char[10]", "const void *"
	Offset uint32 // bytes from the start of the record (common fields included)
	Size   uint32
	Signed bool
}

// Format is the record layout of one tracepoint.
type Format struct {
	Name   string
	ID     uint32
	Fields []Field
}

// Field returns the field called name, or an error naming it.
func (f *Format) Field(name string) (Field, error) {
	for _, fl := range f.Fields {
		if fl.Name == name {
			return fl, nil
		}
	}
	return Field{}, fmt.Errorf("format of %s has no field %q", f.Name, name)
}

// ParseFormat reads a tracepoint format file (events/<group>/<name>/format).
func ParseFormat(r io.Reader) (*Format, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxFormatBytes+1))
	sc.Buffer(make([]byte, 0, 512), maxLineBytes)
	f := &Format{}
	read := 0
	for sc.Scan() {
		read += len(sc.Bytes()) + 1
		if read > maxFormatBytes {
			return nil, fmt.Errorf("format file larger than %d bytes", maxFormatBytes)
		}
		if err := f.parseLine(strings.TrimSpace(sc.Text())); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("format file line longer than %d bytes", maxLineBytes)
		}
		return nil, fmt.Errorf("reading format: %w", err)
	}
	if len(f.Fields) == 0 {
		return nil, errors.New("format file has no fields")
	}
	return f, nil
}

func (f *Format) parseLine(line string) error {
	switch {
	case strings.HasPrefix(line, "name:"):
		f.Name = strings.TrimSpace(strings.TrimPrefix(line, "name:"))
	case strings.HasPrefix(line, "ID:"):
		id, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "ID:")), 10, 32)
		if err != nil {
			return fmt.Errorf("format ID %q: %w", line, err)
		}
		f.ID = uint32(id)
	case strings.HasPrefix(line, "field:"):
		if len(f.Fields) == maxFields {
			return fmt.Errorf("format has more than %d fields", maxFields)
		}
		fl, err := parseField(line)
		if err != nil {
			return err
		}
		f.Fields = append(f.Fields, fl)
	}
	return nil
}

// parseField parses "field:<decl>;\toffset:N;\tsize:N;\tsigned:N;".
func parseField(line string) (Field, error) {
	var fl Field
	parts := strings.Split(line, ";")
	if len(parts) < 3 {
		return fl, fmt.Errorf("format field %q: want field, offset and size", line)
	}
	name, typ, err := splitDecl(strings.TrimPrefix(strings.TrimSpace(parts[0]), "field:"))
	if err != nil {
		return fl, fmt.Errorf("format field %q: %w", line, err)
	}
	fl.Name, fl.Type = name, typ
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(p), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fl, fmt.Errorf("format field %s: %s %q: %w", name, k, v, err)
		}
		switch k {
		case "offset":
			fl.Offset = uint32(n)
		case "size":
			fl.Size = uint32(n)
		case "signed":
			fl.Signed = n != 0
		}
	}
	if fl.Size == 0 {
		return fl, fmt.Errorf("format field %s: size missing or zero", name)
	}
	return fl, nil
}

// splitDecl splits a C declaration such as "__u8 saddr[4]" or
// "__data_loc char[] cmd" into the name and the type around it.
func splitDecl(decl string) (name, typ string, err error) {
	decl = strings.TrimSpace(decl)
	arr := ""
	if i := strings.IndexByte(decl, '['); i >= 0 && strings.HasSuffix(decl, "]") && i > 0 && decl[i-1] != ' ' {
		// "saddr[4]": the brackets belong to the name being declared.
		j := strings.LastIndexAny(decl[:i], " *")
		if j >= 0 {
			arr = decl[i:]
			decl = decl[:i]
		}
	}
	j := strings.LastIndexAny(decl, " *")
	if j < 0 || j == len(decl)-1 {
		return "", "", errors.New("declaration has no name")
	}
	name = decl[j+1:]
	if !isIdent(name) {
		return "", "", fmt.Errorf("field name %q is not an identifier", name)
	}
	return name, strings.TrimSpace(decl[:j+1]) + arr, nil
}

func isIdent(s string) bool {
	for i, c := range s {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}
