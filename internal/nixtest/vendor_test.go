package nixtest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVendorHash recomputes buildGoModule's vendorHash the way nixpkgs does (`go mod
// vendor` in the package's source, NAR hash of vendor/) and compares it with the one
// pinned in nix/vendor-hash.nix. go.mod and go.sum change whenever someone adds an
// import; re-pin with: go test ./internal/nixtest -run TestVendorHash -update
//
// The source is the flake's packages.x86_64-linux.disko-compile.src, evaluated by Nix's
// flake machinery (so from a git checkout: the tracked files, through nix/lib.nix's
// sourceFilter); a STAND-IN nixpkgs whose buildGoModule returns its arguments stands in
// for nixpkgs. The hash assumes nixpkgs' Go has the same minor version as the local one
// (go.mod's go line), which writes the same vendor/modules.txt.
func TestVendorHash(t *testing.T) {
	needNix(t)
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	r := root(t)
	tmp := t.TempDir()
	standIn := filepath.Join(tmp, "stand-in-nixpkgs")
	if err := os.MkdirAll(standIn, 0o755); err != nil {
		t.Fatal(err)
	}
	flake := `# STAND-IN for nixpkgs: buildGoModule returns its arguments.
{
  outputs = _: {
    legacyPackages.x86_64-linux.buildGoModule = args: args;
  };
}
`
	if err := os.WriteFile(filepath.Join(standIn, "flake.nix"), []byte(flake), 0o644); err != nil {
		t.Fatal(err)
	}
	eval := nixCmd("nix", "eval", "--json", "--no-write-lock-file", "--override-input", "nixpkgs", "path:"+standIn,
		".#packages.x86_64-linux.disko-compile.src")
	eval.Dir = r
	src, err := eval.Output()
	if err != nil {
		t.Fatalf("evaluating the flake's package source: %v\n%s", err, stderrOf(err))
	}
	var storePath string
	if err := json.Unmarshal(src, &storePath); err != nil {
		t.Fatalf("decoding %s: %v", src, err)
	}
	work := filepath.Join(tmp, "src")
	copyTree(t, storePath, work)
	if out, err := exec.Command("chmod", "-R", "u+w", work).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v: %s", err, out)
	}

	vendor := exec.Command("go", "mod", "vendor")
	vendor.Dir = work
	vendor.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local", "GO111MODULE=on")
	if out, err := vendor.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor in a copy of the package source failed (buildGoModule would fail the same way): %v\n%s", err, out)
	}
	got := "null"
	if entries, err := os.ReadDir(filepath.Join(work, "vendor")); err == nil && len(entries) > 0 {
		out, _, err := runNix("nix", "hash", "path", "--type", "sha256", "--sri", filepath.Join(work, "vendor"))
		if err != nil {
			t.Fatal(err)
		}
		got = `"` + strings.TrimSpace(out) + `"`
	}

	pinnedFile := filepath.Join(r, "nix", "vendor-hash.nix")
	pinnedJSON, _, err := runNix("nix-instantiate", "--eval", "--json", pinnedFile)
	if err != nil {
		t.Fatal(err)
	}
	pinned := strings.TrimSpace(pinnedJSON)
	if pinned == got {
		return
	}
	if *update {
		old, err := os.ReadFile(pinnedFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pinnedFile, repin(old, got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("re-pinned %s: %s -> %s", pinnedFile, pinned, got)
		return
	}
	t.Errorf("vendorHash drift: nix/vendor-hash.nix pins %s, go.mod/go.sum give %s\nre-pin with: go test ./internal/nixtest -run TestVendorHash -update", pinned, got)
}

// repin keeps the file's comment lines and replaces the value.
func repin(old []byte, value string) []byte {
	var b bytes.Buffer
	for _, l := range strings.SplitAfter(string(old), "\n") {
		if strings.HasPrefix(l, "#") {
			b.WriteString(l)
		}
	}
	b.WriteString(value + "\n")
	return b.Bytes()
}
