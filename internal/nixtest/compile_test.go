package nixtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	compilerOnce sync.Once
	compilerDir  string
	compilerErr  string
)

// TestMain removes the disko-compile built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if compilerDir != "" && os.Getenv("DISKO_COMPILE") == "" {
		os.RemoveAll(compilerDir)
	}
	os.Exit(code)
}

// needCompiler returns a directory with bin/disko-compile: the real one, built from
// cmd/disko-compile (or the one DISKO_COMPILE names). It skips the test while the
// binary does not build or does not implement the `scripts` command of the contract.
func needCompiler(t *testing.T) string {
	t.Helper()
	compilerOnce.Do(func() {
		if bin := os.Getenv("DISKO_COMPILE"); bin != "" {
			compilerDir = filepath.Dir(filepath.Dir(bin))
		} else {
			dir, err := os.MkdirTemp("", "nixtest-disko-compile-")
			if err != nil {
				compilerErr = err.Error()
				return
			}
			compilerDir = dir
			build := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", "disko-compile"), "./cmd/disko-compile")
			build.Dir = root(t)
			if out, err := build.CombinedOutput(); err != nil {
				compilerErr = fmt.Sprintf("cmd/disko-compile does not build yet: %v\n%s", err, out)
				return
			}
		}
		probe := exec.Command(filepath.Join(compilerDir, "bin", "disko-compile"), "scripts",
			"--out", filepath.Join(compilerDir, "probe"), filepath.Join(root(t), "examples", "disk-config-simple.nix"))
		if out, err := probe.CombinedOutput(); err != nil {
			compilerErr = fmt.Sprintf("disko-compile does not implement `scripts --out DIR LAYOUT` yet: %v\n%s", err, out)
		}
	})
	if compilerErr != "" {
		t.Skip(compilerErr)
	}
	return compilerDir
}

// compiler runs the real disko-compile directly.
func compiler(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "bin", "disko-compile"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("disko-compile %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// buildAttrs builds attributes of testdata/compile-build.nix and returns their outputs.
func buildAttrs(t *testing.T, dir, layout string, extra []string, attrs ...string) []string {
	t.Helper()
	args := []string{"--no-out-link", filepath.Join("testdata", "compile-build.nix"),
		"--arg", "diskoCompileDir", dir, "--arg", "layout", layout}
	args = append(args, extra...)
	for _, a := range attrs {
		args = append(args, "-A", a)
	}
	out, _, err := runNix("nix-build", args...)
	if err != nil {
		t.Fatal(err)
	}
	paths := strings.Fields(out)
	if len(paths) != len(attrs) {
		t.Fatalf("nix-build %v printed %d paths for %d attributes: %s", attrs, len(paths), len(attrs), out)
	}
	return paths
}

func evalString(t *testing.T, dir, layout, attr string) string {
	t.Helper()
	out, _, err := runNix("nix-instantiate", "--eval", "--strict", "--json", filepath.Join("testdata", "compile-build.nix"),
		"--arg", "diskoCompileDir", dir, "--arg", "layout", layout, "-A", attr)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	return s
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var scriptFiles = []string{"format.sh", "mount.sh", "unmount.sh", "destroy.sh", "format-mount.sh", "destroy-format-mount.sh"}

// TestCompile builds nix/compile.nix for both examples (with the stand-in runCommand and
// the real compiler) and checks its outputs against disko-compile run directly: the
// nodeps scripts are byte for byte the compiler's, the deps scripts differ only in the
// interpreter line and carry the store paths of the layout's tools, destroy also those
// of disko's destroy dependencies.
func TestCompile(t *testing.T) {
	needNix(t)
	dir := needCompiler(t)
	var extra []string
	if _, err := exec.LookPath("shellcheck"); err == nil {
		extra = []string{"--arg", "checkScripts", "true"}
	} else {
		t.Log("shellcheck not installed: building without disko.checkScripts")
	}
	for _, example := range []string{"disk-config.nix", "disk-config-simple.nix"} {
		t.Run(example, func(t *testing.T) {
			layout := filepath.Join(root(t), "examples", example)
			out := buildAttrs(t, dir, layout, append(extra, "--argstr", "rootMountPoint", "/target"), "compiled")[0]
			tools := evalString(t, dir, layout, "toolsPath")
			destroyTools := evalString(t, dir, layout, "destroyToolsPath")

			direct := t.TempDir()
			compiler(t, dir, "scripts", "--root-mountpoint", "/target", "--out", filepath.Join(direct, "nodeps"), layout)
			compiler(t, dir, "scripts", "--root-mountpoint", "/target", "--path", tools, "--out", filepath.Join(direct, "deps"), layout)
			compiler(t, dir, "scripts", "--root-mountpoint", "/target", "--path", destroyTools, "--out", filepath.Join(direct, "destroy"), layout)

			for _, f := range scriptFiles {
				if got, want := readFile(t, filepath.Join(out, "nodeps", f)), readFile(t, filepath.Join(direct, "nodeps", f)); !bytes.Equal(got, want) {
					t.Errorf("nodeps/%s differs from `disko-compile scripts` without --path", f)
				}
				wantDir := "deps"
				if strings.HasPrefix(f, "destroy") {
					wantDir = "destroy"
				}
				got := readFile(t, filepath.Join(out, "deps", f))
				want := readFile(t, filepath.Join(direct, wantDir, f))
				gotFirst, gotRest, _ := bytes.Cut(got, []byte("\n"))
				_, wantRest, _ := bytes.Cut(want, []byte("\n"))
				if string(gotFirst) != "#!/bin/bash" {
					t.Errorf("deps/%s starts with %q, want the store bash (stand-in: #!/bin/bash)", f, gotFirst)
				}
				if !bytes.Equal(gotRest, wantRest) {
					t.Errorf("deps/%s differs from `disko-compile scripts --path ...` after the first line", f)
				}
				if fi, err := os.Stat(filepath.Join(out, "deps", f)); err != nil || fi.Mode().Perm()&0o111 == 0 {
					t.Errorf("deps/%s is not executable (%v)", f, err)
				}
			}
			if !strings.Contains(destroyTools, "/stand-in/zfs/bin") || strings.Contains(tools, "/stand-in/zfs/bin") {
				t.Errorf("destroy tools %q should add zfs, layout tools %q should not", destroyTools, tools)
			}

			wantConfig := compiler(t, dir, "nixos-config", layout)
			if !jsonEqual(t, readFile(t, filepath.Join(out, "nixos-config.json")), wantConfig) {
				t.Errorf("nixos-config.json differs from `disko-compile nixos-config`")
			}
			if got, want := readFile(t, filepath.Join(out, "nixos-config.nix")), compiler(t, dir, "nixos-config", "--nix", layout); !bytes.Equal(got, want) {
				t.Errorf("nixos-config.nix differs from `disko-compile nixos-config --nix`")
			}
			if got, want := string(readFile(t, filepath.Join(out, "layout.json"))), evalString(t, dir, layout, "layoutJSON"); got != want {
				t.Errorf("layout.json = %s, want lib.toJSON's %s", got, want)
			}
		})
	}
}

// TestScriptPackages builds every system.build script attribute (as lib.compile's
// .scripts) and checks the shape disko and nixos-anywhere expect: bin/disko-<mode> for
// the new ones, a script at $out for the legacy ones, which run the new ones (the
// destroying ones with --yes-wipe-all-disks).
func TestScriptPackages(t *testing.T) {
	needNix(t)
	dir := needCompiler(t)
	layout := filepath.Join(root(t), "examples", "disk-config-simple.nix")
	var modes []struct{ Attr, Bin string }
	evalJSON(t, libExpr(t, `map (m: { Attr = m.attr; Bin = m.bin; }) l.modes`), &modes)

	var attrs []string
	for _, m := range modes {
		attrs = append(attrs, "scripts."+m.Attr, "scripts."+m.Attr+"NoDeps")
	}
	outs := buildAttrs(t, dir, layout, nil, attrs...)
	for i, m := range modes {
		for j, variant := range []string{"deps", "nodeps"} {
			out := outs[2*i+j]
			got := readFile(t, filepath.Join(out, "bin", m.Bin))
			first, _, _ := bytes.Cut(got, []byte("\n"))
			want := "#!/bin/bash"
			if variant == "nodeps" {
				want = "#!/usr/bin/env bash"
			}
			if string(first) != want {
				t.Errorf("%s (%s): first line %q, want %q", m.Attr, variant, first, want)
			}
		}
	}

	legacy := map[string]string{
		"destroyScript": "disko-destroy --yes-wipe-all-disks",
		"formatScript":  "disko-format ",
		"mountScript":   "disko-mount ",
		"diskoScript":   "disko-destroy-format-mount --yes-wipe-all-disks",
	}
	for attr, call := range legacy {
		for _, variant := range []string{"", "NoDeps"} {
			out := buildAttrs(t, dir, layout, nil, "scripts."+attr+variant)[0]
			script := string(readFile(t, out))
			if !strings.Contains(script, "/bin/"+call) || !strings.Contains(script, `"$@"`) {
				t.Errorf("%s%s runs %q, want it to exec .../bin/%s \"$@\"", attr, variant, script, call)
			}
			wantShebang := "#!/bin/bash\n"
			if variant == "NoDeps" {
				wantShebang = "#!/usr/bin/env bash\n"
			}
			if !strings.HasPrefix(script, wantShebang) {
				t.Errorf("%s%s starts with %q, want %q", attr, variant, script, wantShebang)
			}
		}
	}
}

// TestGeneratedCheck builds the IFD-free path's check against a file written by
// `disko-compile nixos-config --nix` (passes) and against a stale one (fails, saying
// how to regenerate and what differs).
func TestGeneratedCheck(t *testing.T) {
	needNix(t)
	dir := needCompiler(t)
	layout := filepath.Join(root(t), "examples", "disk-config.nix")
	tmp := t.TempDir()
	good := filepath.Join(tmp, "disk-config.generated.nix")
	generated := compiler(t, dir, "nixos-config", "--nix", layout)
	if err := os.WriteFile(good, generated, 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(file string) (string, error) {
		out, stderr, err := runNix("nix-build", "--no-out-link", "-E", fmt.Sprintf(
			`(import %s/testdata/compile-build.nix { diskoCompileDir = %s; layout = %s; }).checkGenerated %s`,
			mustAbs(t, "."), dir, layout, file))
		if err != nil {
			return stderr, err
		}
		return out, nil
	}
	if out, err := check(good); err != nil {
		t.Fatalf("the check fails for a freshly generated file: %v\n%s", err, out)
	}

	stale := filepath.Join(tmp, "stale.generated.nix")
	if !bytes.Contains(generated, []byte("/dev/pool/root")) {
		t.Fatalf("expected /dev/pool/root in the generated config:\n%s", generated)
	}
	if err := os.WriteFile(stale, bytes.Replace(generated, []byte("/dev/pool/root"), []byte("/dev/pool/old"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	msg, err := check(stale)
	if err == nil {
		t.Fatal("the check passed for a stale file")
	}
	for _, want := range []string{"stale.generated.nix no longer matches disko.devices", "disko-compile nixos-config --nix", `-      "device": "/dev/pool/old"`, `+      "device": "/dev/pool/root"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("the failing check's message lacks %q:\n%s", want, msg)
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestExampleGenerated keeps examples/disk-config.generated.nix (the example's IFD-free
// NixOS config) equal to what disko-compile writes for examples/disk-config.nix;
// -update rewrites it.
func TestExampleGenerated(t *testing.T) {
	needNix(t)
	dir := needCompiler(t)
	path := filepath.Join(root(t), "examples", "disk-config.generated.nix")
	want := compiler(t, dir, "nixos-config", "--nix", filepath.Join(root(t), "examples", "disk-config.nix"))
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := readFile(t, path); !bytes.Equal(got, want) {
		t.Errorf("%s is stale: regenerate with\n  disko-compile nixos-config --nix examples/disk-config.nix > examples/disk-config.generated.nix\nor: go test ./internal/nixtest -run TestExampleGenerated -update", path)
	}
}

// TestCompileInvalid checks that a bad layout fails the build with the compiler's
// message at the option path the user wrote (what a user of the module sees).
func TestCompileInvalid(t *testing.T) {
	needNix(t)
	dir := needCompiler(t)
	layout := filepath.Join(t.TempDir(), "bad.nix")
	bad := `{ disko.devices.disk.main = { type = "disk"; device = "/dev/vda"; content = { type = "gpt"; partitions.ESP = { size = "500X"; type = "EF00"; content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; }; }; }; }; }`
	if err := os.WriteFile(layout, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, attr := range []string{"compiled", "nixosConfig"} {
		_, stderr, err := runNix("nix-build", "--no-out-link", filepath.Join("testdata", "compile-build.nix"),
			"--arg", "diskoCompileDir", dir, "--arg", "layout", layout, "-A", attr)
		if err == nil {
			t.Fatalf("%s built for an invalid layout", attr)
		}
		if want := `disko.devices.disk.main.content.partitions.ESP.size: "500X"`; !strings.Contains(stderr, want) {
			t.Errorf("%s: the build error does not name the option path %q:\n%s", attr, want, stderr)
		}
	}
}
