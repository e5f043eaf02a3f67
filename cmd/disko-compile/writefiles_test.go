package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFilesOverwrites: writeFiles leaves exactly the new bytes and mode, whatever
// the file held before (overwrite writes over it in place instead of truncating first).
func TestWriteFilesOverwrites(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before []byte // nil: no file yet
		mode   os.FileMode
	}{
		{"new file", nil, 0o600},
		{"longer file", bytes.Repeat([]byte("old "), 5000), 0o600},
		{"shorter file", []byte("old"), 0o644},
		{"same length", []byte("0123456789"), 0o700},
		{"empty file", []byte{}, 0o755},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "format.sh")
			if tc.before != nil {
				if err := os.WriteFile(path, tc.before, tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			want := []byte("#!/usr/bin/env bash\necho new\n")
			if err := writeFiles(dir, map[string][]byte{"format.sh": want}, 0o755); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("content %q, want %q", got, want)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o755 {
				t.Errorf("mode %v, want 0755", fi.Mode().Perm())
			}
		})
	}
}
