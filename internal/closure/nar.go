package closure

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/diskoanywhere/diskoanywhere/internal/nixcmd"
	"github.com/nix-community/go-nix/pkg/wire"
)

// NARSource writes the NAR serialisation of a store path.
type NARSource interface {
	DumpNAR(ctx context.Context, w io.Writer, path string) error
}

// LocalStore dumps paths of the local /nix/store in-process: no process per
// path, which matters for closures of thousands of small paths.
type LocalStore struct{}

// DumpNAR implements NARSource. A w that buffers (BufferedWriter, as Copy
// passes) is written to directly, without a buffer of its own in between.
func (LocalStore) DumpNAR(_ context.Context, w io.Writer, path string) error {
	if bw, ok := w.(BufferedWriter); ok {
		return dumpNAR(bw, path)
	}
	return DumpNAR(w, path)
}

// BufferedWriter is a writer with its own buffer, like *bufio.Writer:
// file contents are read straight into that buffer (ReadFrom).
type BufferedWriter interface {
	io.Writer
	io.StringWriter
	io.ReaderFrom
}

// StoreCommand dumps paths with `nix store dump-path --store URI`, for
// --from: a binary cache or another store instead of the local one.
type StoreCommand struct {
	Nix   *nixcmd.Nix
	Store string
}

// DumpNAR implements NARSource.
func (s StoreCommand) DumpNAR(ctx context.Context, w io.Writer, path string) error {
	return s.Nix.DumpPath(ctx, w, s.Store, path)
}

// DumpNAR writes the NAR serialisation of path to w, byte for byte what
// `nix-store --dump` writes: directory entries in byte order, a file is
// executable when its owner may execute it, symlinks are kept as links.
func DumpNAR(w io.Writer, path string) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := dumpNAR(bw, path); err != nil {
		return err
	}
	return bw.Flush()
}

func dumpNAR(w BufferedWriter, path string) error {
	n := narWriter{w: w}
	n.str("nix-archive-1")
	if err := n.node(path); err != nil {
		return err
	}
	return n.err
}

// narWriter writes NAR tokens in go-nix's wire format, keeping the first
// error.
type narWriter struct {
	w   BufferedWriter
	err error
}

func (n *narWriter) str(s string) {
	if n.err == nil {
		n.err = wire.WriteString(n.w, s)
	}
}

func (n *narWriter) node(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	n.str("(")
	n.str("type")
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		n.str("symlink")
		n.str("target")
		n.str(target)
	case fi.IsDir():
		n.str("directory")
		entries, err := os.ReadDir(p) // sorted by name, byte order
		if err != nil {
			return err
		}
		for _, e := range entries {
			n.str("entry")
			n.str("(")
			n.str("name")
			n.str(e.Name())
			n.str("node")
			if err := n.node(filepath.Join(p, e.Name())); err != nil {
				return err
			}
			n.str(")")
		}
	case fi.Mode().IsRegular():
		n.str("regular")
		if fi.Mode()&0o100 != 0 {
			n.str("executable")
			n.str("")
		}
		n.str("contents")
		if err := n.contents(p, fi.Size()); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: a %s cannot be stored in a NAR", p, fi.Mode().Type())
	}
	n.str(")")
	return n.err
}

// contents writes a file's bytes field. The bytes are read straight into
// the buffered writer's buffer (ReadFrom), not through go-nix's
// BytesWriter, which would add a copy per chunk on the hot path.
func (n *narWriter) contents(p string, size int64) error {
	if n.err != nil {
		return n.err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if n.err = wire.WriteUint64(n.w, uint64(size)); n.err != nil {
		return n.err
	}
	copied, err := io.Copy(n.w, io.LimitReader(f, size))
	if err != nil {
		n.err = err
		return err
	}
	if copied != size {
		return fmt.Errorf("%s: read %d bytes, expected %d (was it modified?)", p, copied, size)
	}
	if r := size % 8; r != 0 {
		var pad [8]byte
		_, n.err = n.w.Write(pad[:8-r])
	}
	return n.err
}
