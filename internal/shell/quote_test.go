package shell

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/shell/shelltest"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"/mnt/etc", "/mnt/etc"},
		{"key=value:1,", "key=value:1,"},
		{"a-b_c.d:e@f%g+h,i", "a-b_c.d:e@f%g+h,i"},
		{"-rf", "-rf"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"''", `''\'''\'''`},
		{"$(reboot)", "'$(reboot)'"},
		{"`reboot`", "'`reboot`'"},
		{"x\ny", "'x\ny'"},
		{"*", "'*'"},
		{"~root", "'~root'"},
		{"ü", "'ü'"},
		{"\xff", "'\xff'"},
	} {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestQuoteRoundTrip has sh (dash on Debian, the remote targets' kind of shell) and bash
// read words made by Quote, and checks that each arrives as exactly one argument with
// exactly the original bytes, and that nothing in it was executed.
func TestQuoteRoundTrip(t *testing.T) {
	pwned := filepath.Join(t.TempDir(), "pwned")
	values := shelltest.Hostile(pwned)
	for _, shell := range []string{"sh", "bash"} {
		if _, err := exec.LookPath(shell); err != nil {
			t.Skipf("%s not found: %v", shell, err)
		}
		for _, v := range values {
			// printf's format is reused for every argument, so a value that became two
			// words would come back with two NULs.
			out, err := exec.Command(shell, "-c", `printf '%s\0' `+Quote(v)).Output()
			if err != nil || string(out) != v+"\x00" {
				t.Errorf("%s -c: Quote(%q) = %s came back as %q (%v)", shell, v, Quote(v), out, err)
			}
		}
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Error("a quoted value was executed")
	}
}

// TestQuoteRandom does the same with random bytes (except NUL, which no argument can
// hold), many values to one shell each, as words among others.
func TestQuoteRandom(t *testing.T) {
	values := shelltest.Random(2000)
	var script strings.Builder
	script.WriteString("set -eu\nx=1\n")
	for _, v := range values {
		script.WriteString("set -- " + Quote(v) + " $x; printf '%s\\0' \"$1\" \"$#\"\n")
	}
	for _, shell := range []string{"sh", "bash"} {
		if _, err := exec.LookPath(shell); err != nil {
			t.Skipf("%s not found: %v", shell, err)
		}
		cmd := exec.Command(shell)
		cmd.Stdin = strings.NewReader(script.String())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", shell, err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if len(got) != 2*len(values) {
			t.Fatalf("%s printed %d words for %d values", shell, len(got), len(values))
		}
		for i, v := range values {
			if got[2*i] != v || got[2*i+1] != "2" {
				t.Errorf("%s: Quote(%q) = %s reads back as %q in %s words", shell, v, Quote(v), got[2*i], got[2*i+1])
			}
		}
	}
}

// TestQuoteBare checks which words stay unquoted: only plain ones.
func TestQuoteBare(t *testing.T) {
	for _, s := range []string{"mkfs.ext4", "/dev/sda", "size=2G", "umask=0077", "root@192.0.2.1", "a-b_c.d:e@f%g+h,i"} {
		if Quote(s) != s {
			t.Errorf("Quote(%q) = %s, want it bare", s, Quote(s))
		}
	}
	plainToo := map[string]bool{"-rf": true, "--": true, "-": true, "=": true, "a=b": true, "%s": true}
	for _, s := range shelltest.Hostile("/tmp/pwned") {
		if Quote(s) == s && !plainToo[s] {
			t.Errorf("Quote(%q) left it bare", s)
		}
	}
}
