package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// extendableFlake is a flake whose nixosConfigurations.stick is made by nixpkgs'
// lib.evalModules (so it has extendModules, as a lib.nixosSystem configuration does),
// with the options disko-install sets declared as NixOS declares them, and a toplevel
// that records their values.
const extendableFlake = `{
  outputs = { self }:
    let
      lib = import %q;
      inherit (lib) mkOption types;
    in {
      nixosConfigurations.stick = lib.evalModules {
        modules = [
          ({ config, ... }: {
            options = {
              boot.loader.efi.canTouchEfiVariables = mkOption { type = types.bool; default = false; };
              boot.loader.grub.devices = mkOption { type = types.listOf types.str; default = [ ]; };
              networking.hostName = mkOption { type = types.str; default = "nixos"; };
              disko.devices = mkOption { type = types.anything; };
              system.build = mkOption { type = types.lazyAttrsOf types.unspecified; default = { }; };
            };
            config = {
              boot.loader.efi.canTouchEfiVariables = true;
              boot.loader.grub.devices = [ "/dev/disk/by-id/original" ];
              disko.devices = builtins.fromJSON (builtins.readFile ./layout.json);
              system.build.toplevel = derivation {
                name = "nixos-system-recorder";
                system = "x86_64-linux";
                builder = "/bin/sh";
                values = builtins.toJSON {
                  efi = config.boot.loader.efi.canTouchEfiVariables;
                  grub = config.boot.loader.grub.devices;
                  host = config.networking.hostName;
                };
                args = [ "-c" "echo \"$values\" > $out" ];
              };
            };
          })
        ];
      };
    };
}
`

// TestExtendedSystem checks that the installed system is the configuration extended as
// disko's install-cli.nix extends it: EFI variables untouched unless
// --write-efi-boot-entries, GRUB on the --disk devices, --system-config merged in.
// It needs nixpkgs' lib (NIXPKGS_LIB), which cannot be fetched here.
func TestExtendedSystem(t *testing.T) {
	lib := os.Getenv("NIXPKGS_LIB")
	if lib == "" {
		t.Skip("NIXPKGS_LIB is not set: an extendable configuration needs nixpkgs' lib.evalModules; set NIXPKGS_LIB to a nixpkgs lib/ directory")
	}
	for _, tool := range []string{"nix", "nix-build", "nix-instantiate"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (see .ci/setup)", tool)
		}
	}
	t.Setenv("NIX_CONFIG", nixConfig)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(fmt.Sprintf(extendableFlake, lib)), 0o644)
	os.WriteFile(filepath.Join(dir, "layout.json"), []byte(standInLayout), 0o644)

	type values struct {
		EFI  bool     `json:"efi"`
		Grub []string `json:"grub"`
		Host string   `json:"host"`
	}
	tests := []struct {
		name string
		args []string
		want values
	}{
		{"defaults", nil, values{false, []string{"/dev/sdx"}, "nixos"}},
		{"--write-efi-boot-entries and --system-config", []string{"--write-efi-boot-entries", "--system-config", `{"networking":{"hostName":"stick"}}`},
			values{true, []string{"/dev/sdx"}, "stick"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, 1000, append([]string{"--flake", dir + "#stick", "--disk", "main", "/dev/sdx", "--dry-run"}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			removeDryRunScript(t, stdout)
			_, rest, _ := strings.Cut(stdout, "nixos-install --system '")
			toplevel, _, _ := strings.Cut(rest, "'")
			b, err := os.ReadFile(toplevel)
			if err != nil {
				t.Fatalf("the toplevel %q: %v\nstdout: %s", toplevel, err, stdout)
			}
			var got values
			if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("the installed system has %s (%v), want %+v", b, err, tt.want)
			}
		})
	}
}

// removeDryRunScript removes the script a --dry-run wrote and named in its first line.
func removeDryRunScript(t *testing.T, stdout string) {
	t.Helper()
	line, _, _ := strings.Cut(stdout, "\n")
	if f, ok := strings.CutPrefix(line, "Would run: "); ok {
		f, _, _ = strings.Cut(f, " ")
		if strings.HasPrefix(f, os.TempDir()) {
			os.Remove(f)
		}
	}
}
