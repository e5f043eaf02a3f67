package nixlit

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestAttrName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"main", "main"},
		{"disk-1_a'", "disk-1_a'"},
		{"1disk", `"1disk"`},
		{"_Z9", "_Z9"},
		{"-a", `"-a"`},
		{"'a", `"'a"`},
		{"a.b", `"a.b"`},
		{"iff", "iff"},
		{"/boot", `"/boot"`},
		{"if", `"if"`},
		{"", `""`},
		{"a\"b\\c${d}$e", `"a\"b\\c\${d}\$e"`},
		{"line\nbreak\r\ttab", `"line\nbreak\r\ttab"`},
		{"ünï 😀", `"ünï 😀"`},
	} {
		if got := AttrName(c.in); got != c.want {
			t.Errorf("AttrName(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestStringReadsBack has Nix evaluate each literal back to the string it was made from.
func TestStringReadsBack(t *testing.T) {
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate is not installed")
	}
	values := []string{"plain", `a"b`, `back\slash`, "${interp}", "$$", "''", "a\nb\r\tc", "ünï 😀", "\x01\x7f", "\\${x}"}
	expr := "["
	for _, v := range values {
		expr += " " + String(v)
	}
	expr += " ]"
	cmd := exec.Command("nix-instantiate", "--eval", "--strict", "--json", "-E", expr)
	cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =\nexperimental-features = nix-command flakes")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-instantiate: %v\n%s", err, stderr.String())
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for i, v := range values {
		if i >= len(got) || got[i] != v {
			t.Errorf("%s reads back as %q, want %q", String(v), got, v)
		}
	}
}
