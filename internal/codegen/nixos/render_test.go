package nixos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// nixEnv keeps Nix off the network and quiet about the missing nixbld group.
var nixEnv = append(os.Environ(), "NIX_CONFIG=substituters =\nbuild-users-group =\nexperimental-features = nix-command flakes")

// nixInstantiate returns the path of nix-instantiate, or skips the test.
func nixInstantiate(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skipf("nix-instantiate not found (Debian package nix-bin): %v", err)
	}
	return bin
}

// nixEvalJSON evaluates args (a file, or --expr EXPR) strictly and returns its JSON.
func nixEvalJSON(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(nixInstantiate(t), append([]string{"--eval", "--strict", "--json"}, args...)...)
	cmd.Env = nixEnv
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-instantiate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// decodeJSON decodes with numbers kept exact, so that 4096 and 4096.0 stay comparable.
func decodeJSON(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, data)
	}
	return v
}

// assertNixMatchesJSON checks that the Nix output of d evaluates to its JSON output.
func assertNixMatchesJSON(t *testing.T, d *config.Devices) {
	t.Helper()
	jsonOut, err := JSON(d)
	if err != nil {
		t.Fatalf("JSON: %v", err)
	}
	nixOut, err := Nix(d)
	if err != nil {
		t.Fatalf("Nix: %v", err)
	}
	file := filepath.Join(t.TempDir(), "config.nix")
	if err := os.WriteFile(file, nixOut, 0o644); err != nil {
		t.Fatal(err)
	}
	evaluated := nixEvalJSON(t, file)
	if diffs := subset(decodeJSON(t, jsonOut), decodeJSON(t, evaluated), nil); len(diffs) > 0 {
		t.Errorf("the Nix output does not evaluate to the JSON output:\n%s\nNix:\n%s", strings.Join(diffs, "\n"), nixOut)
	}
	if diffs := subset(decodeJSON(t, evaluated), decodeJSON(t, jsonOut), nil); len(diffs) > 0 {
		t.Errorf("the JSON output holds more than the Nix output:\n%s", strings.Join(diffs, "\n"))
	}
}

// hostile are strings that break naive quoting in Nix, JSON or shell.
var hostile = []string{
	`"`, `\`, `\"`, `${x}`, `$${x}`, `\${x}`, `$`, `$$`, `''`, `''${x}`, `'''`, "a\nb", "\r\n", "\t", "\x01\x1f\x7f",
	`$(rm -rf /)`, "`id`", `{ }`, `;`, `#`, `/*`, `*/`, `or`, `if`, `null`, `true`, ` leading space`, `é ☃ 𝄞 日本`,
	"\u200b\ufeff", `/mnt/a b`, `.`, ``, `a.b`, `-1`,
}

func TestNixEvaluatesToJSONWithHostileStrings(t *testing.T) {
	nixInstantiate(t)
	d := &config.Devices{Disk: map[string]*config.Disk{}, Nodev: map[string]*config.Nodev{}}
	for i, s := range hostile {
		dev := "/dev/" + s
		name := fmt.Sprintf("d%02d", i)
		d.Disk[name] = gptDisk(dev, map[string]*config.GPTPartition{
			"bios": part("EF02", dev+"1", nil),
			"luks": part("8300", dev+"2", &config.LUKS{Type: "luks", Name: "crypt" + s, Device: dev + "2", InitrdUnlock: true,
				Settings: map[string]any{"keyFile": s, s: []any{s, json.Number("-7"), json.Number("1.5"), true, nil, map[string]any{s: s}}},
				Content: &config.Swap{Type: "swap", Device: "/dev/mapper/crypt" + s, MountOptions: []string{s}, Priority: ptr(-i),
					DiscardPolicy: "once"}}),
			"fs": part("8300", dev+"3", fs(dev+"3", "ext4", "/mnt/"+s+"/x", s, "x="+s)),
		})
		d.Nodev[fmt.Sprintf("n%02d", i)] = &config.Nodev{Type: "nodev", FSType: s, Device: "src" + s, Mountpoint: "/" + s,
			MountOptions: []string{s}}
	}
	assertNixMatchesJSON(t, d)
}

func TestNixEvaluatesToJSONWithRandomStrings(t *testing.T) {
	nixInstantiate(t)
	const alphabet = "\"\\${}'`\n\r\t $(); #/*.aZ_-é☃\x01"
	runes := []rune(alphabet)
	r := rand.New(rand.NewPCG(1, 2))
	random := func() string {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteRune(runes[r.IntN(len(runes))])
		}
		return b.String()
	}
	d := &config.Devices{Nodev: map[string]*config.Nodev{}}
	for i := range 300 {
		key := fmt.Sprintf("n%03d", i)
		d.Nodev[key] = &config.Nodev{Type: "nodev", FSType: random(), Device: "src" + random(),
			Mountpoint: fmt.Sprintf("/%03d%s", i, random()), MountOptions: []string{random(), random()}}
	}
	assertNixMatchesJSON(t, d)
}

func TestNixLiterals(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{"plain", `"plain"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"${x} $y", `"\${x} \$y"`},
		{"l1\nl2\r\t", `"l1\nl2\r\t"`},
		{"☃", `"☃"`},
		{int64(-3), `(-3)`},
		{int64(7), `7`},
		{1.5, `1.5`},
		{1e21, `1.0e+21`},
		{-2.5e-7, `(-2.5e-07)`},
		{map[string]any{"/boot": true, "ok-name'": nil, "if": []any{}, "": map[string]any{}},
			"{\n  \"\" = { };\n  \"/boot\" = true;\n  \"if\" = [ ];\n  ok-name' = null;\n}"},
		{[]any{int64(-1), "x"}, "[\n  (-1)\n  \"x\"\n]"},
	}
	for _, tt := range tests {
		var b strings.Builder
		if err := writeNix(&b, tt.in, 0); err != nil {
			t.Errorf("writeNix(%#v): %v", tt.in, err)
			continue
		}
		if b.String() != tt.want {
			t.Errorf("writeNix(%#v) = %s, want %s", tt.in, b.String(), tt.want)
		}
	}
}

func TestOutputsRefuseWhatNixCannotHold(t *testing.T) {
	for _, s := range []string{"a\x00b", "bad\xffutf8"} {
		d := &config.Devices{Nodev: map[string]*config.Nodev{"x": {Type: "nodev", FSType: "tmpfs", Device: "tmpfs",
			Mountpoint: "/x", MountOptions: []string{s}}}}
		if _, err := Nix(d); err == nil {
			t.Errorf("Nix accepted %q", s)
		}
		if _, err := JSON(d); err == nil {
			t.Errorf("JSON accepted %q", s)
		}
	}
}
