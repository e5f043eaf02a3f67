package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	t.Run("nix-database", func(t *testing.T) {
		d := load(t, exampleLayout)
		paths, err := Build(context.Background(), d, Options{OutDir: t.TempDir(), System: toplevel})
		if err != nil {
			t.Fatal(err)
		}
		checkSystem(t, paths[0], toplevel)
	})
	t.Run("relative-out", func(t *testing.T) {
		// As diskoImagesScript runs it: --out . (nix-store takes absolute roots only).
		t.Chdir(t.TempDir())
		paths, err := Build(context.Background(), load(t, exampleLayout), Options{OutDir: ".", System: toplevel})
		if err != nil {
			t.Fatal(err)
		}
		checkSystem(t, paths[0], toplevel)
	})
	t.Run("closure-info-as-nobody", func(t *testing.T) {
		// What a Nix build has: closureInfo's files, no database to read.
		info := closureInfo(t, toplevel)
		out := sharedTempDir(t)
		res := helper(t, asNobody(t), []string{"HOME=" + out}, helperJob{Layout: exampleLayout, Out: out, System: toplevel, ClosureInfo: info})
		if res.Err != "" {
			t.Fatal(res.Err)
		}
		checkSystem(t, res.Paths[0], toplevel)
	})
}

// closureInfo writes what nixpkgs' closureInfo makes for toplevel (store-paths,
// registration) into a directory every user may read.
func closureInfo(t *testing.T, toplevel string) string {
	t.Helper()
	info := sharedTempDir(t)
	list, err := exec.Command("nix-store", "--query", "--requisites", toplevel).Output()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := exec.Command("nix-store", append([]string{"--dump-db"}, strings.Fields(string(list))...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(info, "store-paths"), list, 0o644)
	os.WriteFile(filepath.Join(info, "registration"), reg, 0o644)
	return info
}

// checkSystem reads the root filesystem of img (partition 2) and checks the closure, its
// registration and the system profile.
func checkSystem(t *testing.T, img, toplevel string) {
	t.Helper()
	regions, err := partitionRegions(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	root := img + "?offset=" + strconv.FormatInt(regions[2].offset, 10)
	// Owned by root, also when nobody built it (mke2fs ran in a user namespace).
	stat, _ := exec.Command("debugfs", "-R", "stat /nix/store/"+filepath.Base(toplevel)+"/dep", root).CombinedOutput()
	if !regexp.MustCompile(`User: +0 +Group: +0`).Match(stat) {
		t.Errorf("the closure is not owned by root in the image:\n%s", stat)
	}
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

// TestRegistration: nix path-info's JSON, a list (Nix 2.4-2.18) or an object by path (Nix
// 2.19 on), becomes nix-store --dump-db's registration of the same paths.
func TestRegistration(t *testing.T) {
	const want = "/nix/store/aaa-dep\nsha256-AAAA\n10\n\n0\n" +
		"/nix/store/bbb-top\nsha256:0bbb\n20\n/nix/store/ccc-top.drv\n2\n/nix/store/aaa-dep\n/nix/store/bbb-top\n"
	for name, out := range map[string]string{
		"list": `[{"path":"/nix/store/aaa-dep","narHash":"sha256-AAAA","narSize":10,"references":[]},
			{"path":"/nix/store/bbb-top","narHash":"sha256:0bbb","narSize":20,"deriver":"/nix/store/ccc-top.drv","references":["/nix/store/aaa-dep","/nix/store/bbb-top"]}]`,
		"object": `{"/nix/store/bbb-top":{"narHash":"sha256:0bbb","narSize":20,"deriver":"/nix/store/ccc-top.drv","references":["aaa-dep","bbb-top"]},
			"/nix/store/aaa-dep":{"narHash":"sha256-AAAA","narSize":10,"references":[]}}`,
	} {
		paths, reg, err := registration([]byte(out))
		if err != nil || string(reg) != want || strings.Join(paths, " ") != "/nix/store/aaa-dep /nix/store/bbb-top" {
			t.Errorf("%s: %v, %v\n%s\nwant\n%s", name, err, paths, reg, want)
		}
	}
	if _, _, err := registration([]byte(`{"/nix/store/aaa-dep":null}`)); err == nil {
		t.Error("an invalid path (null) was accepted")
	}
}
