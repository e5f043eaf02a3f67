package codegen

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/shell/shelltest"
)

// TestQuoteRoundTrip runs bash on words made by Q and checks that each arrives as exactly
// one argument with exactly the original bytes, and that nothing in them was executed.
// The values are the samples above plus random strings of arbitrary bytes (except NUL,
// which no argument can hold).
func TestQuoteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	pwned := filepath.Join(dir, "pwned")
	values := append(shelltest.Hostile(pwned), shelltest.Random(2000)...)
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, v := range values {
		script.WriteString("printf '%s\\0' " + string(Q(v)) + "\n")
		// In a command that takes the word among others, and after a variable.
		script.WriteString("x=1; set -- " + string(Q(v)) + " $x; printf '%s\\0' \"$#\"\n")
	}
	cmd := exec.Command("bash")
	cmd.Stdin = strings.NewReader(script.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(got) != 2*len(values) {
		t.Fatalf("bash printed %d words for %d values", len(got), len(values))
	}
	for i, v := range values {
		if got[2*i] != v {
			t.Errorf("Q(%q) = %s reads back as %q", v, Q(v), got[2*i])
		}
		if got[2*i+1] != "2" {
			t.Errorf("Q(%q) = %s is %s words, not one", v, Q(v), got[2*i+1])
		}
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Error("a quoted value was executed")
	}
}

// TestSplitWords checks disko's `toString list` splitting: whitespace separates words,
// nothing else happens.
func TestSplitWords(t *testing.T) {
	list := []string{"-d raid1", "/dev/mapper/p1", " $(touch x) `y` 'z' ", "a\nb"}
	out, err := exec.Command("bash", "-c", "printf '%s\\0' "+string(splitWords(list))).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	want := strings.Fields(strings.Join(list, " "))
	if !slices.Equal(got, want) {
		t.Errorf("splitWords(%q) gives %q, want %q", list, got, want)
	}
}

// TestOptPathComment checks that a name with a newline cannot end a comment early.
func TestOptPathComment(t *testing.T) {
	p := newOptPath("disko.devices.disk").attr("a\nb; touch x").attr("ok")
	var w writer
	w.comment(p)
	if strings.Count(w.String(), "\n") != 1 || !utf8.ValidString(w.String()) {
		t.Errorf("comment spans lines: %q", w.String())
	}
	if _, err := exec.Command("bash", "-n", "-c", w.String()).CombinedOutput(); err != nil {
		t.Errorf("comment does not parse: %v", err)
	}
	if !bytes.Contains([]byte(w.String()), []byte(`"a\nb; touch x"`)) {
		t.Errorf("the name is not shown escaped: %s", w.String())
	}
}

// TestDeepNestingLinear: the scripts of a layout twice as deep are about twice as big
// (each node's comment and messages name its path in a bounded length).
func TestDeepNestingLinear(t *testing.T) {
	size := func(depth int) int {
		s, err := Generate(mustLoad(t, deepLUKS(depth)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return len(s.Format) + len(s.Mount) + len(s.Unmount)
	}
	small, big := size(200), size(400)
	if ratio := float64(big) / float64(small); ratio > 2.1 {
		t.Errorf("scripts of 400 nested containers are %.2f times those of 200 (%d vs %d bytes): superlinear", ratio, big, small)
	}
}

// TestNULNamesItsPath: a NUL byte anywhere in the layout is refused at its option path,
// which is only put together when one is found.
func TestNULNamesItsPath(t *testing.T) {
	for _, c := range []struct {
		set  func(fs *config.Filesystem)
		want string
	}{
		{func(fs *config.Filesystem) { fs.Mountpoint = "/a\x00b" }, "disko.devices.disk.a.content.partitions.root.content.mountpoint: contains a NUL byte"},
		{func(fs *config.Filesystem) { fs.MountOptions = []string{"ok", "x\x00"} }, "disko.devices.disk.a.content.partitions.root.content.mountOptions[1]: contains a NUL byte"},
	} {
		d := mustLoad(t, twoDisks)
		c.set(d.Disk["a"].Content.(*config.GPT).Partitions["root"].Content.(*config.Filesystem))
		_, err := Generate(d, Options{})
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Generate: %v, want %s", err, c.want)
		}
	}
}
