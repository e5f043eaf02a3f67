package closure

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nix-community/go-nix/pkg/nar"
)

// narTree makes a store-path-like tree: files files of size bytes each, in
// directories of 100, with an executable and a symlink per directory.
func narTree(t testing.TB, files, size int) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "path")
	data := make([]byte, size)
	rand.Read(data)
	for i := range files {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "run"), []byte("#!/bin/sh\n"), 0o755)
			os.Symlink("run", filepath.Join(dir, "link"))
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// goNixDump is go-nix's NAR writer, buffered like DumpNAR.
func goNixDump(w io.Writer, path string) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := nar.DumpPath(bw, path); err != nil {
		return err
	}
	return bw.Flush()
}

func TestGoNixDumpMatchesDumpNAR(t *testing.T) {
	root := narTree(t, 250, 1000)
	var ours, theirs bytes.Buffer
	if err := DumpNAR(&ours, root); err != nil {
		t.Fatal(err)
	}
	if err := goNixDump(&theirs, root); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours.Bytes(), theirs.Bytes()) {
		t.Fatalf("go-nix and DumpNAR differ (%d vs %d bytes)", theirs.Len(), ours.Len())
	}
}

// BenchmarkNARWriter compares DumpNAR with go-nix's nar.DumpPath on the
// shapes of closure-copy.md (many small files, few large ones), from the
// page cache into io.Discard, alternating in the same iterations. The
// ratio is go-nix's time over ours (above 1: go-nix is slower).
func BenchmarkNARWriter(b *testing.B) {
	for _, shape := range []struct {
		name        string
		files, size int
	}{
		{"many-small-4KiB", 20000, 4 << 10},
		{"few-large-64MiB", 4, 64 << 20},
	} {
		b.Run(shape.name, func(b *testing.B) {
			root := narTree(b, shape.files, shape.size)
			DumpNAR(io.Discard, root) // warm the page cache
			var ours, theirs time.Duration
			var n int64
			for range b.N {
				start := time.Now()
				cw := &countingDiscard{}
				if err := DumpNAR(cw, root); err != nil {
					b.Fatal(err)
				}
				ours += time.Since(start)
				n = cw.n
				start = time.Now()
				if err := goNixDump(io.Discard, root); err != nil {
					b.Fatal(err)
				}
				theirs += time.Since(start)
			}
			mb := float64(n) / 1e6 * float64(b.N)
			b.ReportMetric(mb/ours.Seconds(), "ours-MB/s")
			b.ReportMetric(mb/theirs.Seconds(), "go-nix-MB/s")
			b.ReportMetric(theirs.Seconds()/ours.Seconds(), "go-nix/ours")
		})
	}
}

type countingDiscard struct{ n int64 }

func (c *countingDiscard) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
