package codegen

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// TestLoopPristine runs runtime.sh's disko_pristine on loop disks that are blank but for
// a few bytes: any byte that is not zero in the first or the last MiB makes the disk not
// pristine, newlines included (a command substitution drops trailing ones, and the check
// reads the disk through one), while bytes outside both MiBs do not count. It says
// nothing on stderr: bash's warning about the NUL bytes it drops is not the user's.
func TestLoopPristine(t *testing.T) {
	requireRoot(t, "head", "tail")
	const mib = 1 << 20
	cases := []struct {
		name     string
		size     int64
		at       int64 // where data is written; -1: nowhere
		data     string
		pristine bool
	}{
		{"zeros", 4 * mib, -1, "", true},
		{"first byte", 4 * mib, 0, "x", false},
		{"end of the first MiB", 4 * mib, mib - 1, "x", false},
		{"after the first MiB", 4 * mib, mib, "x", true},
		{"before the last MiB", 4 * mib, 3*mib - 1, "x", true},
		{"start of the last MiB", 4 * mib, 3 * mib, "x", false},
		{"a newline as the last byte", 4 * mib, 4*mib - 1, "\n", false},
		{"newlines amid zeros", 4 * mib, 100, "\n\x00\n", false},
		{"a small disk", 512 << 10, -1, "", true},
		{"a small disk's last byte", 512 << 10, 512<<10 - 1, "\x01", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dev := newLoop(t, c.size)
			if c.at >= 0 {
				f, err := os.OpenFile(dev, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				_, err = f.WriteAt([]byte(c.data), c.at)
				if err2 := f.Close(); err == nil {
					err = err2
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			script := runtime + fmt.Sprintf("\nif disko_pristine %q; then echo pristine; else echo used; fi\n", dev)
			cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, &stderr)
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr: %q, want nothing", &stderr)
			}
			want := "used\n"
			if c.pristine {
				want = "pristine\n"
			}
			if string(out) != want {
				t.Errorf("disko_pristine said %q, want %q", out, want)
			}
		})
	}
}
