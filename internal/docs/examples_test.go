package docs

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// TestWorkedExamplesMatchCorpus checks the embedded layouts against the shared corpus, and
// their JSON against what Nix evaluates them to; -update copies both again.
func TestWorkedExamplesMatchCorpus(t *testing.T) {
	for _, ex := range workedExamples {
		t.Run(ex.name, func(t *testing.T) {
			src := filepath.Join("examples", ex.name+".nix")
			corpus, err := os.ReadFile(filepath.Join(corpusDir, ex.name+".nix"))
			if err != nil {
				t.Skipf("the shared corpus is missing: %v", err)
			}
			if *update {
				if err := os.WriteFile(src, corpus, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			checkCommitted(t, src, corpus)

			nix, err := exec.LookPath("nix-instantiate")
			if err != nil {
				t.Skip("nix-instantiate is not installed (Debian package nix-bin)")
			}
			abs, err := filepath.Abs(src)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(nix, "--eval", "--strict", "--json", abs)
			cmd.Env = append(os.Environ(), "NIX_CONFIG=substituters =\nexperimental-features = nix-command flakes")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("nix-instantiate %s: %v\n%s", abs, err, stderr.String())
			}
			var evaluated bytes.Buffer
			if err := json.Indent(&evaluated, out, "", "  "); err != nil {
				t.Fatal(err)
			}
			evaluated.WriteByte('\n')
			jsonFile := filepath.Join("examples", ex.name+".json")
			if *update {
				if err := os.WriteFile(jsonFile, evaluated.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			committed, err := os.ReadFile(jsonFile)
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal(committed, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s is not what Nix evaluates %s to: regenerate with go test ./internal/docs -update", jsonFile, src)
			}
		})
	}
}
