package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
)

// corpusDir holds disko's example layouts (a copy under disko's licence), the ones users
// start from.
const corpusDir = "../../internal/docs/examples"

// swapLayout is simple-efi with a swap partition between ESP and root.
const swapLayout = `{ disko.devices.disk.main = { device = "/dev/vdb"; type = "disk"; content = {
  type = "gpt";
  partitions = {
    ESP = { type = "EF00"; size = "500M"; priority = 1; content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; mountOptions = [ "umask=0077" ]; }; };
    swap = { size = "1G"; priority = 2; content = { type = "swap"; randomEncryption = true; }; };
    root = { size = "100%"; priority = 3; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; };
  }; }; }; }`

// terraformEngine returns the terraform (or tofu) binary on PATH, or skips: these tests
// drive a real engine and never download one.
func terraformEngine(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"terraform", "tofu"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("neither terraform nor tofu is on PATH (.ci/setup provides one)")
	return ""
}

// devOverrides builds the provider binary and writes a CLI configuration whose
// dev_overrides point the provider's address at it, as a user testing a local build
// would; it returns the environment for the engine.
func devOverrides(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skip("nix-instantiate is not on PATH: the data source evaluates layouts with Nix")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH: needed to build the provider binary for dev_overrides")
	}
	binDir := t.TempDir()
	build := exec.Command(goBin, "build", "-o", filepath.Join(binDir, "terraform-provider-anywhere"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the provider: %v\n%s", err, out)
	}
	rc := filepath.Join(t.TempDir(), "terraform.rc")
	cliConfig := `provider_installation {
  dev_overrides {
    "` + providerAddress + `" = "` + binDir + `"
  }
  direct {}
}
`
	if err := os.WriteFile(rc, []byte(cliConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(),
		"TF_CLI_CONFIG_FILE="+rc,
		"TF_IN_AUTOMATION=1",
		"CHECKPOINT_DISABLE=1",
		"NIX_CONFIG=substituters =\nexperimental-features = nix-command flakes",
	)
}

// runEngine runs the engine in dir and returns its combined output and whether it succeeded.
func runEngine(t *testing.T, engine string, env []string, dir string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(engine, append(args, "-no-color")...)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err == nil
}

// writeModule writes a root module that requires the provider, with body after it.
func writeModule(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	main := `terraform {
  required_providers {
    anywhere = { source = "` + providerAddress + `" }
  }
}
` + body
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// layoutOutputs is what TestLayoutDataSource reads back through `terraform output -json`.
type layoutOutputs struct {
	FileSystems struct {
		Value map[string]struct {
			Device  string   `json:"device"`
			FSType  string   `json:"fs_type"`
			Options []string `json:"options"`
		} `json:"value"`
	} `json:"file_systems"`
	SwapDevices struct {
		Value []struct {
			Device           string `json:"device"`
			RandomEncryption bool   `json:"random_encryption"`
		} `json:"value"`
	} `json:"swap_devices"`
	Scripts struct {
		Value map[string]string `json:"value"`
	} `json:"scripts"`
	NixOSConfigJSON struct {
		Value string `json:"value"`
	} `json:"nixos_config_json"`
	RootMountPoint struct {
		Value string `json:"value"`
	} `json:"root_mount_point"`
}

// TestLayoutDataSource loads the provider into a real engine through dev_overrides (one
// build for both halves) and checks anywhere_disko_layout's results and diagnostics.
func TestLayoutDataSource(t *testing.T) {
	engine := terraformEngine(t)
	env := devOverrides(t)
	t.Run("results", func(t *testing.T) { testLayoutResults(t, engine, env) })
	t.Run("diagnostics", func(t *testing.T) { testLayoutDiagnostics(t, engine, env) })
	t.Run("example", func(t *testing.T) { testExamplePlan(t, engine, env) })
}

// testExamplePlan runs validate and plan on examples/terraform (in a copy, so that no
// state or lock file lands in the repository): two machines to create, nothing
// contacted, and the layout's "/" and "/boot" in the outputs.
func testExamplePlan(t *testing.T, engine string, env []string) {
	if len(resources) == 0 {
		t.Skip("no resource is registered yet: the example installs with anywhere_install")
	}
	dir := t.TempDir()
	files, err := filepath.Glob("../../examples/terraform/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("examples/terraform is empty (%v)", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, ok := runEngine(t, engine, env, dir, "validate"); !ok {
		t.Fatalf("validate failed:\n%s", out)
	}
	out, ok := runEngine(t, engine, env, dir, "plan")
	if !ok {
		t.Fatalf("plan failed:\n%s", out)
	}
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		`anywhere_install.machine["web1"] will be created`,
		`anywhere_install.machine["web2"] will be created`,
		"Plan: 2 to add, 0 to change, 0 to destroy.",
		`web1 = { + "/" = "ext4" + "/boot" = "vfat" }`,
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
}

// testLayoutResults checks what anywhere_disko_layout returns for a file layout and a
// flake layout: the file systems "/" and "/boot" with their devices, swap, every mode's
// script and the NixOS configuration.
func testLayoutResults(t *testing.T, engine string, env []string) {
	corpus, err := filepath.Abs(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	flake := t.TempDir()
	flakeNix := `{ outputs = { self }: { diskoConfigurations.simple = import ` + filepath.Join(corpus, "simple-efi.nix") + `; }; }`
	if err := os.WriteFile(filepath.Join(flake, "flake.nix"), []byte(flakeNix), 0o644); err != nil {
		t.Fatal(err)
	}
	swap := filepath.Join(t.TempDir(), "swap.nix")
	if err := os.WriteFile(swap, []byte(swapLayout), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, args     string
		wantMountPoint string
		wantRootDevice string
		wantSwaps      int
	}{
		{
			name:           "file with disks",
			args:           `layout = "` + filepath.Join(corpus, "simple-efi.nix") + `"` + "\n" + `disks = { main = "/dev/vdb" }`,
			wantMountPoint: "/mnt",
			wantRootDevice: "/dev/disk/by-partlabel/disk-main-root",
		},
		{
			name:           "flake output",
			args:           `layout = "path:` + flake + `#simple"`,
			wantMountPoint: "/mnt",
			wantRootDevice: "/dev/disk/by-partlabel/disk-main-root",
		},
		{
			name:           "swap and root_mount_point",
			args:           `layout = "` + swap + `"` + "\n" + `root_mount_point = "/target"`,
			wantMountPoint: "/target",
			wantRootDevice: "/dev/disk/by-partlabel/disk-main-root",
			wantSwaps:      1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var outputs strings.Builder
			for _, name := range []string{"file_systems", "swap_devices", "scripts", "nixos_config_json", "root_mount_point"} {
				outputs.WriteString(`output "` + name + `" { value = data.anywhere_disko_layout.this.` + name + " }\n")
			}
			dir := writeModule(t, "data \"anywhere_disko_layout\" \"this\" {\n"+tc.args+"\n}\n"+outputs.String())
			for _, step := range [][]string{{"validate"}, {"plan"}, {"apply", "-auto-approve"}} {
				if out, ok := runEngine(t, engine, env, dir, step...); !ok {
					t.Fatalf("%s failed:\n%s", step[0], out)
				}
			}
			out, ok := runEngine(t, engine, env, dir, "output", "-json")
			if !ok {
				t.Fatalf("output failed:\n%s", out)
			}
			var got layoutOutputs
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output -json: %v\n%s", err, out)
			}

			fs := got.FileSystems.Value
			if root := fs["/"]; root.Device != tc.wantRootDevice || root.FSType != "ext4" {
				t.Errorf(`file_systems["/"] = %+v, want ext4 on %s`, root, tc.wantRootDevice)
			}
			if boot := fs["/boot"]; boot.FSType != "vfat" || !slices.Contains(boot.Options, "umask=0077") {
				t.Errorf(`file_systems["/boot"] = %+v, want vfat with umask=0077`, boot)
			}
			if n := len(got.SwapDevices.Value); n != tc.wantSwaps {
				t.Errorf("swap_devices has %d entries, want %d: %+v", n, tc.wantSwaps, got.SwapDevices.Value)
			}
			for _, mode := range codegen.Modes {
				if !strings.HasPrefix(got.Scripts.Value[mode], "#!") {
					t.Errorf("scripts[%q] is not a script: %.80q", mode, got.Scripts.Value[mode])
				}
			}
			if !strings.Contains(got.Scripts.Value["mount"], tc.wantMountPoint+"/boot") {
				t.Errorf("scripts[\"mount\"] does not mount under %s", tc.wantMountPoint)
			}
			if got.RootMountPoint.Value != tc.wantMountPoint {
				t.Errorf("root_mount_point = %q, want %q", got.RootMountPoint.Value, tc.wantMountPoint)
			}
			var conf struct {
				FileSystems map[string]any `json:"fileSystems"`
			}
			if err := json.Unmarshal([]byte(got.NixOSConfigJSON.Value), &conf); err != nil || conf.FileSystems["/boot"] == nil {
				t.Errorf("nixos_config_json has no fileSystems./boot (%v): %.200s", err, got.NixOSConfigJSON.Value)
			}
		})
	}
}

// testLayoutDiagnostics checks that a bad layout fails the plan with a diagnostic on the
// attribute at fault that names the layout's option path.
func testLayoutDiagnostics(t *testing.T, engine string, env []string) {
	corpus, err := filepath.Abs(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	badLayout := filepath.Join(t.TempDir(), "bad.nix")
	bad := `{ disko.devices.disk.main = { device = "/dev/vdb"; type = "disk"; content = { type = "gpt";
  partitions.root = { size = "500X"; content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; }; }; }; }; }`
	if err := os.WriteFile(badLayout, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, args string
		want       []string
	}{
		{
			name: "bad size",
			args: `layout = "` + badLayout + `"`,
			want: []string{"Error: Invalid layout at disko.devices.disk.main.content.partitions.root.size", `"500X" is`, `layout = "` + badLayout},
		},
		{
			name: "unknown disk",
			args: `layout = "` + filepath.Join(corpus, "simple-efi.nix") + `"` + "\n" + `disks = { mian = "/dev/vdb" }`,
			want: []string{"Error: Unknown disk", `disks["mian"] names no disk of this layout`, "are: main"},
		},
		{
			name: "missing file",
			args: `layout = "./nope.nix"`,
			want: []string{"Error: Cannot evaluate the layout", "nope.nix"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeModule(t, "data \"anywhere_disko_layout\" \"this\" {\n"+tc.args+"\n}\n")
			out, ok := runEngine(t, engine, env, dir, "plan")
			if ok {
				t.Fatalf("plan succeeded, want it to fail:\n%s", out)
			}
			flat := strings.Join(strings.Fields(out), " ")
			for _, w := range tc.want {
				if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) {
					t.Errorf("plan output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
