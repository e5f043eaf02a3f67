package nixtest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// systemBuildsExpr is testdata/system-builds.nix for a layout file, with imageBuilder
// settings (a Nix attribute set) and the real compiler when dir is not "".
func systemBuildsExpr(t *testing.T, dir, layout, imageBuilder, body string) string {
	t.Helper()
	dc := "null"
	if dir != "" {
		dc = nixPath(t, dir)
	}
	return `let b = import ` + mustAbs(t, filepath.Join("testdata", "system-builds.nix")) + ` { diskoCompileDir = ` + dc +
		`; layout = ` + nixPath(t, layout) + `; imageBuilder = ` + imageBuilder + `; }; in ` + body
}

// TestSystemBuildsCommands checks, with builtins and the package stand-ins only (what CI
// can run), the command lines of diskoImages, diskoImagesScript and installTest: the
// image format, --system/--closure-info unless copyNixStore is false, extraPostVM, and
// anywhere --vm-test on the disk script compiled for the VM's disks.
func TestSystemBuildsCommands(t *testing.T) {
	needNix(t)
	layout := filepath.Join(root(t), "examples", "disk-config-simple.nix")
	tests := []struct {
		name, imageBuilder, body string
		want, notWant            []string
	}{
		{
			name: "diskoImages copies the system by default", imageBuilder: `{ }`,
			body: `builtins.elemAt b.diskoImages.args 1`,
			want: []string{`disko-compile image --format raw --system /nix/store/`, `-nixos-system-stand-in --closure-info /nix/store/`, `-closure-info --out "$out" layout.json`, "/stand-in/mtools/bin", "/stand-in/qemu-utils/bin", "/stand-in/nix/bin"},
		},
		{
			name: "imageBuilder options take effect", imageBuilder: `{ name = "img"; imageFormat = "qcow2"; copyNixStore = false; extraPostVM = "echo post-vm"; }`,
			body:    `b.diskoImages.name + "\n" + builtins.elemAt b.diskoImages.args 1`,
			want:    []string{"img\n", `disko-compile image --format qcow2  --out "$out" layout.json` + "\necho post-vm"},
			notWant: []string{"--system", "--closure-info"},
		},
		{
			name: "diskoImagesScript passes disko's flags through", imageBuilder: `{ }`,
			body: `b.diskoImagesScript.text`,
			want: []string{"#!/bin/bash\n", "--pre-format-files|--post-format-files)", `--build-memory $2 is ignored`,
				`exec disko-compile image --format raw --system /nix/store/`, `-closure-info "${args[@]}" --out . /nix/store/`},
		},
		{
			name: "installTest runs anywhere --vm-test on the VM's disk script", imageBuilder: `{ }`,
			body: `b.installTest.text + "\n" + builtins.toJSON b.installTest.vmCompiled.layout`,
			want: []string{"/stand-in/qemu/bin", "/stand-in/anywhere/bin", `exec anywhere --vm-test --store-paths /nix/store/`, `-disko /nix/store/`, `-nixos-system-stand-in --disko-layout /nix/store/`, `-disko-vm-compiled/layout.json "$@"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			evalJSON(t, systemBuildsExpr(t, "", layout, tc.imageBuilder, tc.body), &got)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("unexpected %q in:\n%s", w, got)
				}
			}
		})
	}
}

// TestSystemBuildsImages builds diskoImages (without the store: copyNixStore = false)
// and runs diskoImagesScript with disko's flags, with the real disko-compile and the
// host's mkfs tools, as an ordinary build does: one image per disk.
func TestSystemBuildsImages(t *testing.T) {
	needNix(t)
	dir := needCompiler(t)
	for _, tool := range []string{"sfdisk", "sgdisk", "mkfs.ext4", "mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	layout := filepath.Join(root(t), "examples", "disk-config-simple.nix")
	out, _, err := runNix("nix-build", "--no-out-link", "-E", systemBuildsExpr(t, dir, layout, `{ copyNixStore = false; extraPostVM = "ls $out > $out.list; mv $out.list $out/list"; }`, `b.diskoImages`))
	if err != nil {
		t.Fatal(err)
	}
	images := strings.TrimSpace(out)
	if list := string(readFile(t, filepath.Join(images, "list"))); list != "main.raw\n" {
		t.Errorf("diskoImages holds %q, want main.raw (and extraPostVM's list)", list)
	}
	if fi, err := os.Stat(filepath.Join(images, "main.raw")); err != nil || fi.Size() != 2<<30 {
		t.Errorf("main.raw: %v, want a 2G image (imageSize)", err)
	}

	out, _, err = runNix("nix-build", "--no-out-link", "-E", systemBuildsExpr(t, dir, layout, `{ copyNixStore = false; }`, `b.diskoImagesScript`))
	if err != nil {
		t.Fatal(err)
	}
	help, err := exec.Command(strings.TrimSpace(out), "--help").Output()
	if err != nil || !strings.Contains(string(help), "--post-format-files SRC DST") {
		t.Errorf("diskoImagesScript --help: %v\n%s", err, help)
	}
	if err := exec.Command(strings.TrimSpace(out), "--bogus").Run(); err == nil {
		t.Errorf("diskoImagesScript --bogus succeeded, want a usage error")
	}
	work := t.TempDir()
	file := filepath.Join(work, "motd")
	if err := os.WriteFile(file, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(strings.TrimSpace(out), "--build-memory", "2048", "--size", "main=1G", "--post-format-files", file, "/etc/motd")
	cmd.Dir = work
	msg, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("diskoImagesScript: %v\n%s", err, msg)
	}
	if !regexp.MustCompile(`--build-memory 2048 is ignored`).Match(msg) {
		t.Errorf("no note that --build-memory is ignored:\n%s", msg)
	}
	if fi, err := os.Stat(filepath.Join(work, "main.raw")); err != nil || fi.Size() != 1<<30 {
		t.Errorf("main.raw in the working directory: %v, want a 1G image (--size)\n%s", err, msg)
	}
}

// TestModuleSystemBuilds evaluates the module (real lib, stub): imageBuilder's options
// reach diskoImages, and installTest's disk script is compiled for the VM's disks
// (/dev/vda, /dev/vdb in disk-name order) while the system's own layout is unchanged.
func TestModuleSystemBuilds(t *testing.T) {
	needNix(t)
	lib := needLib(t)
	modules := `[
		{ disko.devices.disk.b = { device = "/dev/sdx"; content = { type = "gpt"; partitions.r = { size = "100%"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; }; }; }; }
		{ disko.devices.disk.a.device = "/dev/sdy"; }
		{ disko.imageBuilder = { imageFormat = "qcow2"; copyNixStore = false; name = "img"; extraPostVM = "echo post-vm"; }; }
		{ system.build.toplevel = builtins.toFile "nixos-system-stand-in" ""; }
		({ lib, ... }: { virtualisation.vmVariantWithDisko.system.build.toplevel = lib.mkForce (builtins.toFile "vm-variant-stand-in" ""); })
	]`
	body := `let b = cfg.system.build; dev = l: builtins.mapAttrs (_: d: d.device) l.disk; in {
		vm = dev b.installTest.vmCompiled.layout; own = dev b.diskoCompiled.layout;
		variant = dev cfg.virtualisation.vmVariantWithDisko.disko.devices;
		images = b.diskoImages.name + " " + builtins.elemAt b.diskoImages.args 1;
		test = b.installTest.text; vmWithDisko = b.vmWithDisko.text; warnings = cfg.warnings; }`
	var got struct {
		VM, Own, Variant          map[string]string
		Images, Test, VMWithDisko string
		Warnings                  []string
	}
	evalJSON(t, moduleExpr(t, lib, "", modules, body), &got, noIFD...)
	if got.VM["a"] != "/dev/vda" || got.VM["b"] != "/dev/vdb" || got.Own["a"] != "/dev/sdy" || got.Own["b"] != "/dev/sdx" {
		t.Errorf("installTest's disks %v (want a=/dev/vda b=/dev/vdb), the system's %v (want unchanged)", got.VM, got.Own)
	}
	// vmWithDisko boots the system of virtualisation.vmVariantWithDisko (the VM's disks
	// plus the user's additions); installTest keeps the plain VM system.
	if got.Variant["a"] != "/dev/vda" || got.Variant["b"] != "/dev/vdb" {
		t.Errorf("vmVariantWithDisko's disks %v, want a=/dev/vda b=/dev/vdb", got.Variant)
	}
	if !regexp.MustCompile(`--system /nix/store/\S+-vm-variant-stand-in `).MatchString(got.VMWithDisko) || strings.Contains(got.Test, "vm-variant-stand-in") {
		t.Errorf("vmWithDisko must boot vmVariantWithDisko's system and installTest the VM's own:\nvmWithDisko: %s\ninstallTest: %s", got.VMWithDisko, got.Test)
	}
	if !strings.HasPrefix(got.Images, "img ") || !strings.Contains(got.Images, `disko-compile image --format qcow2  --out "$out" layout.json`+"\necho post-vm") {
		t.Errorf("diskoImages: %s", got.Images)
	}
	if !regexp.MustCompile(`exec anywhere --vm-test --store-paths /nix/store/\S+-disko /nix/store/\S+-nixos-system-stand-in --disko-layout /nix/store/\S+-disko-compiled/layout.json "\$@"`).MatchString(got.Test) {
		t.Errorf("installTest:\n%s", got.Test)
	}
	if len(got.Warnings) != 0 {
		t.Errorf("warnings for options that take effect: %v", got.Warnings)
	}
}

// TestInstallTestCommandLine runs the installTest script with the real anywhere and
// disko-compile: anywhere accepts its command line, reads the VM layout (disk main on
// /dev/vda, no warning that the disk script was built for other disks) and gets as far
// as the installer tarball, which here does not exist, so no VM starts.
func TestInstallTestCommandLine(t *testing.T) {
	needNix(t)
	dir := needCompiler(t)
	anywhereDir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(anywhereDir, "bin", "anywhere"), "./cmd/anywhere")
	build.Dir = root(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("cmd/anywhere does not build: %v\n%s", err, out)
	}
	layout := filepath.Join(root(t), "examples", "disk-config-simple.nix")
	expr := `import ` + mustAbs(t, filepath.Join("testdata", "system-builds.nix")) + ` { diskoCompileDir = ` + nixPath(t, dir) +
		`; anywhereDir = ` + nixPath(t, anywhereDir) + `; layout = ` + nixPath(t, layout) + `; }`
	out, _, err := runNix("nix-build", "--no-out-link", "-E", expr, "-A", "installTest")
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "missing-installer.tar.gz")
	msg, err := exec.Command(strings.TrimSpace(out), "--kexec", tarball).CombinedOutput()
	if err == nil {
		t.Fatalf("installTest with a missing tarball succeeded:\n%s", msg)
	}
	for _, want := range []string{"with disks main=/dev/vda (2G)", "--kexec: open " + tarball} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(string(msg), "warning") || strings.Contains(string(msg), "--help") {
		t.Errorf("anywhere warned or refused its command line:\n%s", msg)
	}
}

// TestSystemBuildsImagesWithSystem builds diskoImages with the store copied in (the
// default): the system's closure, read through closureInfo as in a Nix build, is in the
// root filesystem's /nix/store and the system profile points at it (read with debugfs).
func TestSystemBuildsImagesWithSystem(t *testing.T) {
	needNix(t)
	dir := needCompiler(t)
	for _, tool := range []string{"sfdisk", "sgdisk", "mkfs.ext4", "mkfs.vfat", "mcopy", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	layout := filepath.Join(root(t), "examples", "disk-config-simple.nix")
	out, _, err := runNix("nix-build", "--no-out-link", "-E", systemBuildsExpr(t, dir, layout, `{ }`, `b.diskoImages`))
	if err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(strings.TrimSpace(out), "main.raw")
	table, err := exec.Command("sfdisk", "--json", image).Output()
	if err != nil {
		t.Fatalf("sfdisk --json %s: %v", image, err)
	}
	var parts struct {
		PartitionTable struct {
			SectorSize int `json:"sectorsize"`
			Partitions []struct {
				Start int64  `json:"start"`
				Name  string `json:"name"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(table, &parts); err != nil {
		t.Fatal(err)
	}
	var offset int64 = -1
	for _, p := range parts.PartitionTable.Partitions {
		if p.Name == "disk-main-root" {
			offset = p.Start * int64(max(parts.PartitionTable.SectorSize, 512))
		}
	}
	if offset < 0 {
		t.Fatalf("no partition disk-main-root in %s:\n%s", image, table)
	}
	fs := image + "?offset=" + strconv.FormatInt(offset, 10)
	debugfs := func(req string) string {
		got, err := exec.Command("debugfs", "-R", req, fs).CombinedOutput()
		if err != nil {
			t.Fatalf("debugfs -R %q %s: %v\n%s", req, fs, err, got)
		}
		return string(got)
	}
	if store := debugfs("ls /nix/store"); !strings.Contains(store, "-nixos-system-stand-in") {
		t.Errorf("/nix/store of the image does not hold the system:\n%s", store)
	}
	if profile := debugfs("stat /nix/var/nix/profiles/system"); !strings.Contains(profile, "Type: symlink") {
		t.Errorf("/nix/var/nix/profiles/system is not a symlink:\n%s", profile)
	}
}
