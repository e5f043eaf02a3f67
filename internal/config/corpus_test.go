package config_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/eval"
)

var update = flag.Bool("update", false, "rewrite golden files")

const corpusDir = "../../../shared/corpus/disko-examples"

// TestCorpusJSONCurrent evaluates every layout of the shared corpus with Debian's Nix and
// checks it against testdata/corpus (the fuzzer's seeds and the benchmark's input), and
// that it loads. with-lib.nix needs nixpkgs' lib, which is not on these machines: it must
// fail with the clear message, and load when given internal/eval's stand-in lib.
func TestCorpusJSONCurrent(t *testing.T) {
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate not found: apt-get install nix-bin (.ci/run installs it)")
	}
	files, err := filepath.Glob(corpusDir + "/*.nix")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus layouts under %s", corpusDir)
	}
	ev := &eval.Evaluator{}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".nix")
		t.Run(name, func(t *testing.T) {
			raw, err := ev.Devices(context.Background(), eval.Source{Path: file})
			if name == "with-lib" {
				if err == nil || !strings.Contains(err.Error(), "no nixpkgs was found") {
					t.Fatalf("want the clear needs-lib error, got %v", err)
				}
				raw, err = ev.Devices(context.Background(), eval.Source{Path: file, Nixpkgs: "../eval/testdata/fakelib"})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := config.Load(raw, config.LoadOptions{}); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := config.Load(raw, config.LoadOptions{}); err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, raw); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata/corpus", name+".json")
			if *update {
				if err := os.WriteFile(golden, append(compact.Bytes(), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(bytes.TrimSpace(want)) != compact.String() {
				t.Errorf("%s differs from Nix's evaluation; run go test ./internal/config -update", golden)
			}
		})
	}
}
