package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSystemClosure: --system copies a closure into the root filesystem, registers it in
// a Nix database there (nix path-info on the image's store finds it valid) and sets the
// system profile. The closure is two tiny derivations built with the host's nix.
func TestSystemClosure(t *testing.T) {
	for _, tool := range []string{"nix-build", "nix-store", "nix", "debugfs", "mkfs.ext4", "mkfs.vfat", "sfdisk"} {
		if _, err := toolPath(tool); err != nil {
			t.Skip(err)
		}
	}
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false")
	expr := filepath.Join(t.TempDir(), "system.nix")
	os.WriteFile(expr, []byte(`let dep = derivation { name = "image-test-dep"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo dep > $out"]; };
in derivation { name = "image-test-toplevel"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "/bin/mkdir $out; echo ${dep} > $out/dep"]; }`), 0o644)
	out, err := exec.Command("nix-build", "--no-out-link", expr).Output()
	if err != nil {
		t.Skipf("nix-build cannot build here: %v", err)
	}
	toplevel := strings.TrimSpace(string(out))
	dir := t.TempDir()
	d := load(t, exampleLayout)
	paths, err := Build(context.Background(), d, Options{OutDir: dir, System: toplevel})
	if err != nil {
		t.Fatal(err)
	}
	img := paths[0]
	regions, err := partitionRegions(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	root := img + "?offset=" + strconv.FormatInt(regions[2].offset, 10)
	dump := t.TempDir()
	if out, err := exec.Command("debugfs", "-R", "rdump /nix "+dump, root).CombinedOutput(); err != nil {
		t.Fatalf("debugfs rdump: %v\n%s", err, out)
	}
	for _, p := range []string{filepath.Join("nix/store", filepath.Base(toplevel), "dep"), "nix/var/nix/db/db.sqlite"} {
		if _, err := os.Stat(filepath.Join(dump, p)); err != nil {
			t.Errorf("/%s is not in the image: %v", p, err)
		}
	}
	if got, err := os.Readlink(filepath.Join(dump, "nix/var/nix/profiles/system-1-link")); got != toplevel {
		t.Errorf("system-1-link points at %q (%v), want %s", got, err, toplevel)
	}
	info, err := exec.Command("nix", "path-info", "--recursive", "--store", "local?root="+dump, toplevel).CombinedOutput()
	if err != nil || strings.Count(string(info), "/nix/store/") != 2 {
		t.Errorf("nix path-info in the image's store: %v\n%s", err, info)
	}
}
