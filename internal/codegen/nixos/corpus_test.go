package nixos

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

// corpusDir holds disko's example layouts and, under expected/, disko's own NixOS output.
const corpusDir = "../../../../shared/corpus/disko-examples"

// fakeLib is internal/eval's stand-in for nixpkgs' lib (nixpkgs is not reachable here),
// enough for the corpus's with-lib.nix.
const fakeLib = "../../eval/testdata/fakelib/lib"

// layoutExpr evaluates a layout file as disko would: a function gets `lib` when it asks
// for it; without a lib it yields a marker so that the test can say why it skips.
const layoutExpr = `{ file, lib }:
let
  f = import file;
  formals = builtins.functionArgs f;
  needsLib = formals ? lib && !formals.lib;
in
  if !builtins.isFunction f then f.disko.devices
  else if needsLib && lib == null then { __needsLib = true; }
  else (f (if formals ? lib && lib != null then { lib = import lib; } else { })).disko.devices
`

// corpusLayout returns the JSON of disko.devices of one corpus file, or skips.
func corpusLayout(t *testing.T, file string) []byte {
	t.Helper()
	lib := []string{"--arg", "lib", "null"}
	if abs, err := filepath.Abs(fakeLib); err == nil {
		if _, err := os.Stat(filepath.Join(abs, "default.nix")); err == nil {
			lib = []string{"--argstr", "lib", abs}
		}
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	out := nixEvalJSON(t, append([]string{"--expr", layoutExpr, "--argstr", "file", abs}, lib...)...)
	if bytes.Equal(bytes.TrimSpace(out), []byte(`{"__needsLib":true}`)) {
		t.Skipf("%s needs nixpkgs' lib, which is not available here, and %s (a stand-in) is missing", file, fakeLib)
	}
	return out
}

// TestCorpus compiles every example layout and checks our NixOS configuration against
// disko's (every value of expected/NAME.nixos.json, unchanged, nothing added outside
// additions), against the golden files, and the Nix output against the JSON output.
func TestCorpus(t *testing.T) {
	nixInstantiate(t)
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.nix"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no layouts in %s (%v): the shared corpus is missing", corpusDir, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".nix")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := config.Load(corpusLayout(t, file), config.LoadOptions{})
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			jsonOut, err := JSON(d)
			if err != nil {
				t.Fatalf("JSON: %v", err)
			}
			nixOut, err := Nix(d)
			if err != nil {
				t.Fatalf("Nix: %v", err)
			}

			expected, err := os.ReadFile(filepath.Join(corpusDir, "expected", name+".nixos.json"))
			if err != nil {
				t.Fatalf("disko's output for %s: %v", name, err)
			}
			if diffs := subset(decodeJSON(t, expected), decodeJSON(t, jsonOut), additions); len(diffs) > 0 {
				t.Errorf("differs from disko's NixOS configuration (expected/%s.nixos.json):\n%s", name, strings.Join(diffs, "\n"))
			}

			golden(t, filepath.Join("testdata", "golden", name+".json"), jsonOut)
			golden(t, filepath.Join("testdata", "golden", name+".nix"), nixOut)

			evaluated := nixEvalJSON(t, filepath.Join("testdata", "golden", name+".nix"))
			if !bytes.Equal(canonical(t, evaluated), canonical(t, jsonOut)) {
				t.Errorf("the Nix output evaluates to\n%s\nbut the JSON output is\n%s", canonical(t, evaluated), canonical(t, jsonOut))
			}
		})
	}
}

// golden compares got with a golden file, or rewrites it under -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test -update and review the diff):\ngot:\n%s", file, got)
	}
}

// canonical re-encodes JSON with sorted keys and numbers as written, for comparison.
func canonical(t *testing.T, data []byte) []byte {
	t.Helper()
	return []byte(text(decodeJSON(t, data)))
}
