package config

import (
	"os"
	"path/filepath"
	"testing"
)

// corpusSeeds returns the JSON that Nix yields for each layout of the shared corpus,
// committed under testdata/corpus (TestCorpusJSONCurrent keeps it in step with Nix).
func corpusSeeds(t testing.TB) map[string][]byte {
	files, err := filepath.Glob("testdata/corpus/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus JSON under testdata/corpus: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = data
	}
	return out
}

func TestCorpusLoads(t *testing.T) {
	for name, data := range corpusSeeds(t) {
		if _, err := Load(data, LoadOptions{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// BenchmarkLoadLargest measures decode + defaults + validation of the largest corpus
// layout, without Nix. Target: well under 1 ms.
func BenchmarkLoadLargest(b *testing.B) {
	var largest []byte
	for _, data := range corpusSeeds(b) {
		if len(data) > len(largest) {
			largest = data
		}
	}
	b.SetBytes(int64(len(largest)))
	for b.Loop() {
		if _, err := Load(largest, LoadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
