package codegen

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
)

var update = flag.Bool("update", false, "rewrite golden files")

// corpusDir holds disko's example layouts.
const corpusDir = "../../../shared/corpus/disko-examples"

// fakeLib is internal/eval's stand-in for nixpkgs' lib, enough for with-lib.nix.
const fakeLib = "../eval/testdata/fakelib"

// corpus evaluates every example layout once (nix-instantiate through internal/eval) and
// loads it with config.Load. Layouts that cannot be evaluated here are reported by name
// with the reason, for the caller to skip.
var corpus = sync.OnceValues(func() (map[string]*config.Devices, map[string]string) {
	layouts, skipped := map[string]*config.Devices{}, map[string]string{}
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.nix"))
	if len(files) == 0 {
		skipped["*"] = "no layouts in " + corpusDir + ": the shared corpus is missing"
		return layouts, skipped
	}
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		skipped["*"] = "nix-instantiate is not installed (Debian: nix-bin)"
		return layouts, skipped
	}
	os.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes")
	lib, _ := filepath.Abs(fakeLib)
	if _, err := os.Stat(filepath.Join(lib, "lib", "default.nix")); err != nil {
		lib = ""
	}
	ev := &eval.Evaluator{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".nix")
		raw, err := ev.Devices(contextBackground(), eval.Source{Path: f, Nixpkgs: lib})
		if err != nil {
			if lib == "" && strings.Contains(err.Error(), "lib") {
				skipped[name] = "needs nixpkgs' lib, and internal/eval's stand-in " + fakeLib + " is missing"
			} else {
				skipped[name] = "evaluating: " + err.Error()
			}
			continue
		}
		d, err := config.Load(raw, config.LoadOptions{})
		if err != nil {
			skipped[name] = "config.Load: " + err.Error()
			continue
		}
		layouts[name] = d
	}
	return layouts, skipped
})

func loadCorpus(t testing.TB) map[string]*config.Devices {
	t.Helper()
	layouts, skipped := corpus()
	if why, ok := skipped["*"]; ok {
		t.Skip(why)
	}
	for name, why := range skipped {
		if strings.HasPrefix(why, "evaluating") || strings.HasPrefix(why, "config.Load") {
			t.Errorf("%s: %s", name, why)
		}
	}
	return layouts
}

// TestGolden compares every script of every corpus layout with testdata/golden
// (go test -update rewrites them).
func TestGolden(t *testing.T) {
	layouts := loadCorpus(t)
	if _, skipped := corpus(); len(skipped) > 0 {
		for name, why := range skipped {
			t.Logf("skipping %s: %s", name, why)
		}
	}
	for name, d := range layouts {
		t.Run(name, func(t *testing.T) {
			s, err := Generate(d, Options{})
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			for file, script := range s.Files() {
				got := elideRuntime(t, file, script)
				golden := filepath.Join("testdata", "golden", name, file)
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create the golden files)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s (go test -update rewrites it)", file, golden)
				}
			}
		})
	}
}

// elideRuntime replaces the runtime part of a script by one comment naming what it
// holds: the runtime's text is checked verbatim (runtimeSection), and 150 copies of it
// would bury a layout's own change in the diff of a runtime change. The shell tests run
// the whole scripts.
func elideRuntime(t *testing.T, file string, script []byte) []byte {
	t.Helper()
	start, end, names, err := runtimeSection(script)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var b bytes.Buffer
	b.Write(script[:start])
	line := "# (runtime.sh, elided in golden files:"
	for _, name := range names {
		if len(line)+len(name) > 90 {
			b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + name
	}
	b.WriteString(line + ")\n")
	b.Write(script[end:])
	return b.Bytes()
}
