package nixtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestFlakeStructure calls nix/flake.nix's function with STAND-IN inputs
// (testdata/stand-in-nixpkgs.nix) and checks which outputs exist for which system and
// what the packages are built from. It says nothing about whether nixpkgs builds them.
func TestFlakeStructure(t *testing.T) {
	needNix(t)
	out, _, err := runNix("nix-instantiate", "--eval", "--strict", "--json", filepath.Join("testdata", "flake-structure.nix"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Top          []string            `json:"top"`
		Packages     map[string][]string `json:"packages"`
		Apps         map[string][]string `json:"apps"`
		Checks       map[string][]string `json:"checks"`
		DevShells    map[string][]string `json:"devShells"`
		NixosModules map[string]string   `json:"nixosModules"`
		Lib          []string            `json:"lib"`
		PackageArgs  map[string]struct {
			VendorHashIsPinned bool     `json:"vendorHashIsPinned"`
			SubPackages        []string `json:"subPackages"`
			Cgo                int      `json:"cgo"`
		} `json:"packageArgs"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	want := []string{"apps", "checks", "devShells", "lib", "nixosModules", "packages"}
	if !slices.Equal(s.Top, want) {
		t.Errorf("flake outputs %v, want %v", s.Top, want)
	}
	systems := []string{"aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux"}
	for _, sys := range systems {
		expect(t, "packages."+sys, s.Packages[sys], "anywhere", "default", "disko", "disko-compile", "disko-install")
		expect(t, "apps."+sys, s.Apps[sys], "anywhere", "default", "disko", "disko-compile", "disko-install")
		expect(t, "devShells."+sys, s.DevShells[sys], "default")
		checks := []string{"anywhere", "disko", "disko-compile", "disko-install"}
		if sys == "x86_64-linux" || sys == "aarch64-linux" {
			checks = append(checks, "example-demo", "example-simple", "module-eval")
		}
		slices.Sort(checks)
		expect(t, "checks."+sys, s.Checks[sys], checks...)
	}
	module := filepath.Join(root(t), "nix", "module.nix")
	for _, name := range []string{"default", "disko"} {
		if s.NixosModules[name] != module {
			t.Errorf("nixosModules.%s = %q, want %s", name, s.NixosModules[name], module)
		}
	}
	for name, args := range s.PackageArgs {
		if !args.VendorHashIsPinned {
			t.Errorf("packages.x86_64-linux.%s does not use nix/vendor-hash.nix", name)
		}
		// buildGoModule fails on a subPackage that is not a main package of the tree.
		for _, sub := range args.SubPackages {
			if _, err := os.Stat(filepath.Join(root(t), sub, "main.go")); err != nil {
				t.Errorf("packages.x86_64-linux.%s builds %s, which has no main.go: %v", name, sub, err)
			}
		}
	}
	// Only the commands that resolve users' host names need libc's resolver; the others
	// ship static (nix/package.nix), as BenchmarkCompileVsEval builds disko-compile.
	for name, cgo := range map[string]int{"anywhere": 1, "disko-install": 1, "default": 1, "disko": 0, "disko-compile": 0} {
		if got := s.PackageArgs[name].Cgo; got != cgo {
			t.Errorf("packages.x86_64-linux.%s has CGO_ENABLED = %d, want %d", name, got, cgo)
		}
	}
	if !slices.Contains(s.Lib, "compile") {
		t.Errorf("lib %v has no compile", s.Lib)
	}
	// The module's store-less path names this checkout; the golden file must not.
	golden(t, "flake-structure.json", indentJSON(t, []byte(strings.ReplaceAll(out, root(t), "<repo>"))))
}

func expect(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func indentJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("encoding: %v", err)
	}
	return append(out, '\n')
}

// TestExamplesFlake evaluates examples/flake.nix with Nix's flake machinery from a git
// checkout, as `disko-compile --flake ./examples#demo` does (the examples' `path:..`
// input needs the repository as the flake's source tree, which a git checkout gives).
// Locking needs every input, and nixpkgs cannot be fetched here, so a STAND-IN flake
// takes nixpkgs' place in the lock; the outputs read here (diskoConfigurations) do not
// use it. nixosConfigurations needs the real nixpkgs and is only checked to exist.
func TestExamplesFlake(t *testing.T) {
	needNix(t)
	tmp := t.TempDir()
	repo := filepath.Join(tmp, "repo")
	for _, p := range []string{"flake.nix", "nix", "examples"} {
		copyTree(t, filepath.Join(root(t), p), filepath.Join(repo, p))
	}
	standIn := filepath.Join(tmp, "stand-in-nixpkgs")
	if err := os.MkdirAll(standIn, 0o755); err != nil {
		t.Fatal(err)
	}
	flake := `# STAND-IN for nixpkgs, only so that the examples flake can be locked offline.
{ outputs = _: { lib.nixosSystem = _: throw "stand-in nixpkgs: nixosSystem is not available here"; }; }
`
	if err := os.WriteFile(filepath.Join(standIn, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", "."}, {"add", "flake.nix", "nix", "examples"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	nixEval := func(ref string, extra ...string) string {
		t.Helper()
		args := append([]string{"eval", "--json", "--no-write-lock-file",
			"--override-input", "diskoanywhere/nixpkgs", "path:" + standIn, ref}, extra...)
		cmd := nixCmd("nix", args...)
		cmd.Dir = repo
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("nix %v: %v: %s", args, err, stderrOf(err))
		}
		return string(out)
	}
	examples := "./examples"

	got := nixEval(examples + "#diskoConfigurations")
	var want any
	evalJSON(t, fmt.Sprintf(`{ demo = import %s/examples/disk-config.nix; simple = import %s/examples/disk-config-simple.nix; }`, root(t), root(t)), &want)
	wantJSON, _ := json.Marshal(want)
	if !jsonEqual(t, []byte(got), wantJSON) {
		t.Errorf("diskoConfigurations = %s, want the examples' disk-config files %s", got, wantJSON)
	}

	var names []string
	if err := json.Unmarshal([]byte(nixEval(examples+"#nixosConfigurations", "--apply", "builtins.attrNames")), &names); err != nil {
		t.Fatal(err)
	}
	expect(t, "nixosConfigurations", names, "demo")
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// copyTree copies a file or directory with cp (symlinks kept, modes kept).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v: %s", src, dst, err, out)
	}
}
