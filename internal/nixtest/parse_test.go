package nixtest

import (
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestParse parses every .nix file of the repository with Nix's own parser. Fixtures
// of other packages (testdata/ outside this package) are skipped: some are invalid on
// purpose, to test error messages.
func TestParse(t *testing.T) {
	needNix(t)
	base := root(t)
	var files []string
	err := filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, path)
		if d.IsDir() {
			switch {
			case d.Name() == ".git" || d.Name() == "vendor" || strings.HasPrefix(d.Name(), "result"):
				return filepath.SkipDir
			case d.Name() == "testdata" && rel != filepath.Join("internal", "nixtest", "testdata"):
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".nix") {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", base, err)
	}
	for _, want := range []string{"flake.nix", "nix/module.nix", "nix/lib.nix", "nix/flake.nix", "examples/flake.nix"} {
		if !slices.Contains(files, want) {
			t.Errorf("%s not found among the parsed files", want)
		}
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			if _, _, err := runNix("nix-instantiate", "--parse", filepath.Join(base, f)); err != nil {
				t.Error(err)
			}
		})
	}
}
