package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const corpus = "../../../shared/corpus/disko-examples"

func needNix(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate not found: apt-get install nix-bin (.ci/run installs it)")
	}
}

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"disko-compile"}, args...), strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCommands(t *testing.T) {
	needNix(t)
	bad := writeFile(t, "bad.nix", `{ disko.devices.disk.main = { device = "/dev/sda"; content = { type = "gpt"; partitions.ESP = { size = "500X"; type = "EF00"; }; partitions.root = { size = "100%"; content = { type = "filesystem"; format = "ext4"; mountpoints = "/"; }; }; }; }; }`)
	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{"validate a corpus layout", "", []string{"validate", corpus + "/luks-lvm.nix"}, 0,
			[]string{"layout is valid:", "disk", "main", "/dev/vdb (gpt)", "lvm_vg"}, nil},
		{"validate reports every problem with its path", "", []string{"validate", bad}, 1, nil,
			[]string{
				`disko.devices.disk.main.content.partitions.ESP.size: "500X" is not a size: use a whole number with an optional K, M, G, T or P suffix, or 100% (examples: 500M, 2G, 100%)`,
				`disko.devices.disk.main.content.partitions.root.content.mountpoints: unknown option (did you mean "mountpoint"?)`}},
		{"flags after the layout, disko's two-word --disk", "", []string{"json", corpus + "/simple-efi.nix", "--disk", "main", "/dev/loop9"}, 0,
			[]string{`"device": "/dev/loop9"`}, nil},
		{"--disk NAME=DEVICE naming no disk", "", []string{"validate", "--disk", "nope=/dev/sda", corpus + "/simple-efi.nix"}, 1, nil,
			[]string{`--disk nope=/dev/sda names no disk of this layout`}},
		{"--argstr as disko takes it", "", []string{"json", "--argstr", "name", "x", writeFile(t, "fn.nix", `{ name ? "a" }: { disko.devices.disk.${name} = { device = "/dev/sda"; }; }`)}, 0,
			[]string{`"x": {`}, nil},
		{"--arg as disko takes it", "", []string{"json", "--arg", "disks", `[ "/dev/sdz" ]`, writeFile(t, "fn2.nix", `{ disks ? [ "/dev/sda" ] }: { disko.devices.disk.main = { device = builtins.head disks; }; }`)}, 0,
			[]string{`"device": "/dev/sdz"`}, nil},
		{"JSON on stdin", `{"disko":{"devices":{"disk":{"d":{"device":"/dev/sda"}}}}}`, []string{"validate", "-"}, 0,
			[]string{"layout is valid:"}, nil},
		{"a layout of lib without nixpkgs", "", []string{"validate", corpus + "/with-lib.nix"}, 1, nil,
			[]string{"no nixpkgs was found", "--nixpkgs"}},
		{"unknown flag is a usage error", "", []string{"validate", "--no-such-flag", corpus + "/simple-efi.nix"}, 2, nil,
			[]string{"flag provided but not defined: -no-such-flag"}},
		{"unknown mode", "", []string{"script", "wipe", corpus + "/simple-efi.nix"}, 2, nil, []string{"wipe"}},
		{"script mode", "", []string{"script", "format,mount", corpus + "/simple-efi.nix"}, 0, []string{"set -euo pipefail"}, nil},
		{"nixos-config as Nix", "", []string{"nixos-config", "--nix", corpus + "/simple-efi.nix"}, 0, []string{`"/boot"`, "fileSystems"}, nil},
		{"no argument runs the built-in example", "", nil, 0,
			[]string{"Built-in example layout", "layout is valid:", "fileSystems", "format.sh", "disko-compile validate ./disk-config.nix"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}

func TestScriptsWritesAllModes(t *testing.T) {
	needNix(t)
	out := t.TempDir()
	if code, _, stderr := runCLI(t, "", "scripts", "--out", out, "--root-mountpoint", "/target", corpus+"/simple-efi.nix"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, name := range []string{"format.sh", "mount.sh", "unmount.sh", "destroy.sh", "format-mount.sh", "destroy-format-mount.sh"} {
		info, err := os.Stat(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o755 {
			t.Errorf("%s has mode %v, want 0755", name, info.Mode().Perm())
		}
	}
	mount, _ := os.ReadFile(filepath.Join(out, "mount.sh"))
	if !strings.Contains(string(mount), "/target") {
		t.Errorf("mount.sh does not use --root-mountpoint /target")
	}
}

func TestJSONIsLoadable(t *testing.T) {
	needNix(t)
	code, stdout, stderr := runCLI(t, "", "json", corpus+"/luks-lvm.nix")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The printed model, defaults included, must validate again unchanged.
	code2, stdout2, stderr2 := runCLI(t, stdout, "json", "-")
	if code2 != 0 || stdout2 != stdout {
		t.Fatalf("json output does not round-trip (exit %d): %s", code2, stderr2)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(stdout), &v); err != nil {
		t.Fatal(err)
	}
}
