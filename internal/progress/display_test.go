package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// clock is a settable time source for the display.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// TestTerminalRedrawsOneLine: on a terminal the status is one line that is
// rewritten in place, taken away before output and drawn again after it,
// cut to the terminal's width, kept away while a prompt holds the display,
// and removed by Set("").
func TestTerminalRedrawsOneLine(t *testing.T) {
	c := newClock()
	var out bytes.Buffer
	d := New(&out, Options{TTY: true, Width: 20, Now: c.now})

	step := func(name string, f func(), want string) {
		t.Helper()
		out.Reset()
		f()
		if got := out.String(); got != want {
			t.Errorf("%s: wrote %q, want %q", name, got, want)
		}
	}
	step("first status", func() { d.Set("copy: 1/3 paths") }, "copy: 1/3 paths")
	step("too soon", func() { c.advance(50 * time.Millisecond); d.Set("copy: 2/3 paths") }, "")
	step("redraw", func() { c.advance(100 * time.Millisecond); d.Set("copy: 2/3 paths") }, "\r\x1b[Kcopy: 2/3 paths")
	step("output", func() { d.Write([]byte("  nix| building\n")) }, "\r\x1b[K  nix| building\ncopy: 2/3 paths")
	step("cut to width", func() {
		c.advance(time.Second)
		d.Set("a status line much longer than twenty columns")
	}, "\r\x1b[Ka status line much…")
	step("partial line", func() { d.Write([]byte("Accept? [yes/no]: ")) }, "\r\x1b[KAccept? [yes/no]: ")
	step("no status after a partial line", func() { c.advance(time.Second); d.Set("x") }, "")
	step("line ended", func() { d.Write([]byte("yes\n")) }, "yes\nx")
	var release func()
	step("hold", func() { release = d.Hold() }, "\r\x1b[K")
	step("held", func() { c.advance(time.Second); d.Set("y") }, "")
	step("released", func() { release() }, "y")
	step("cleared", func() { d.Set("") }, "\r\x1b[K")
	step("output without status", func() { d.Write([]byte("done\n")) }, "done\n")
}

// TestPlainPrintsAfterQuiet: without a terminal the status becomes a line
// of its own only once the output has been quiet for Quiet, and then again
// every Quiet at most, so a log never goes quiet for longer.
func TestPlainPrintsAfterQuiet(t *testing.T) {
	c := newClock()
	var out bytes.Buffer
	d := New(&out, Options{Now: c.now})
	var lines []string
	var at []time.Duration
	start := c.t
	for range 30 { // 30 s of one status refresh a second
		c.advance(time.Second)
		before := out.Len()
		d.Set("    reboot: wait for the new system: 3 tries, last: TCP refused")
		if out.Len() > before {
			lines = append(lines, strings.TrimSuffix(out.String()[before:], "\n"))
			at = append(at, c.t.Sub(start))
		}
		if c.t.Sub(start) == 12*time.Second {
			d.Write([]byte("  reboot| some output\n"))
		}
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 17 * time.Second, 22 * time.Second, 27 * time.Second}
	if len(at) != len(want) {
		t.Fatalf("status lines at %v, want at %v:\n%s", at, want, out.String())
	}
	for i := range want {
		if at[i] != want[i] {
			t.Errorf("status line %d at %s, want %s", i, at[i], want[i])
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "\r") || strings.Contains(l, "\x1b") {
			t.Errorf("plain output has terminal controls: %q", l)
		}
	}
	if strings.Contains(out.String(), "…") {
		t.Errorf("plain output was cut: %q", out.String())
	}
}

func TestTransferString(t *testing.T) {
	for _, c := range []struct {
		t    Transfer
		want string
	}{
		{Transfer{Paths: 12, TotalPaths: 340, Bytes: 100 << 20, TotalBytes: 400 << 20, Elapsed: 10 * time.Second},
			"12/340 paths, 100.0 MiB of 400.0 MiB (25%), 10.5 MB/s, 30s left"},
		{Transfer{Bytes: 3 << 20, Elapsed: 2 * time.Second}, "3.0 MiB, 1.6 MB/s"},
		{Transfer{Bytes: 0, TotalBytes: 1 << 30}, "0 B of 1.0 GiB (0%)"},
		{Transfer{Bytes: 1 << 30, TotalBytes: 1 << 30, Elapsed: time.Second}, "1.0 GiB of 1.0 GiB (100%), 1073.7 MB/s"},
	} {
		if got := c.t.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.t, got, c.want)
		}
	}
}
