package nixtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// needLib returns the nixpkgs lib directory named by NIXPKGS_LIB. nixpkgs cannot be
// fetched on the CI machines, so without it these tests skip; in a session that has a
// checkout (e.g. of nix-community/nixpkgs.lib): NIXPKGS_LIB=/path/to/lib go test ...
func needLib(t *testing.T) string {
	t.Helper()
	lib := os.Getenv("NIXPKGS_LIB")
	if lib == "" {
		t.Skip("NIXPKGS_LIB is not set: nix/module.nix needs the real nixpkgs lib (lib.evalModules), which cannot be fetched here; set NIXPKGS_LIB to a nixpkgs lib/ directory to run these tests")
	}
	if _, err := os.Stat(filepath.Join(lib, "modules.nix")); err != nil {
		t.Fatalf("NIXPKGS_LIB=%s is not a nixpkgs lib directory: %v", lib, err)
	}
	return lib
}

// moduleExpr evaluates nix/module.nix with the REAL lib, the NixOS option stand-ins of
// testdata/nixos-stub.nix and the package stand-ins, plus modules (a Nix list
// expression); compilerDir "" means no compiler (then any attempt to build one, e.g. by
// import-from-derivation, fails).
func moduleExpr(t *testing.T, lib, compilerDir, modules, body string) string {
	t.Helper()
	dc := "null"
	if compilerDir != "" {
		dc = fmt.Sprintf(`builtins.path { path = %s; name = "disko-compile"; }`, compilerDir)
	}
	return fmt.Sprintf(`let
  lib = import %[2]s;
  ev = import %[1]s/testdata/module-eval.nix { libPath = %[2]s; diskoCompile = %[3]s; modules = %[4]s; };
  cfg = ev.config;
  l = import %[5]s/nix/lib.nix;
  demo = import %[5]s/examples/disk-config.nix;
in %[6]s`, mustAbs(t, "."), lib, dc, modules, root(t), body)
}

const (
	diskPart  = `{ disko.devices.disk.main = { type = "disk"; device = "/dev/vda"; }; }`
	tablePart = `{ disko.devices.disk.main.content = { type = "gpt"; partitions.ESP = { size = "512M"; type = "EF00"; content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; mountOptions = [ "umask=0077" ]; }; }; }; }`
)

// TestModule evaluates the module with the real module system: option merging across
// modules, defaults, the system.build names, and the IFD-free path (no compiler exists
// in these evaluations, so an import-from-derivation would fail).
func TestModule(t *testing.T) {
	needNix(t)
	lib := needLib(t)
	tests := []struct {
		name, modules, body, want string
	}{
		{
			name: "a disk in one module, its partitions in another, more options in a third",
			modules: diskPart + tablePart + `
				{ disko.devices.disk.main.content.partitions.ESP.content.mountOptions = [ "noatime" ]; }
				{ disko.devices.disk.main.postCreateHook = "echo one"; }
				{ disko.devices.disk.main.postCreateHook = "echo two"; }`,
			body: `cfg.system.build.diskoCompiled.layout`,
			want: `{"disk":{"main":{"type":"disk","device":"/dev/vda","postCreateHook":"echo one\necho two",
				"content":{"type":"gpt","partitions":{"ESP":{"size":"512M","type":"EF00",
				"content":{"type":"filesystem","format":"vfat","mountpoint":"/boot","mountOptions":["umask=0077","noatime"]}}}}}}}`,
		},
		{
			name:    "defaults as in disko",
			modules: ``,
			body:    `{ inherit (cfg.disko) enableConfig rootMountPoint checkScripts generatedConfig; d = cfg.disko.devices.disk; l = cfg.disko.devices.lvm_vg; }`,
			want:    `{"enableConfig":true,"rootMountPoint":"/mnt","checkScripts":false,"generatedConfig":null,"d":{},"l":{}}`,
		},
		{
			name:    "priorities work at any depth",
			modules: `{ disko.devices.disk.main = { type = "disk"; device = lib.mkDefault "/dev/vda"; }; } { disko.devices.disk.main.device = "/dev/vdb"; } { disko.devices.disk.other.device = "/dev/a"; } { disko.devices.disk.other.device = lib.mkForce "/dev/b"; }`,
			body:    `map (d: d.device) (builtins.attrValues cfg.disko.devices.disk)`,
			want:    `["/dev/vdb","/dev/b"]`,
		},
		{
			name:    "mkIf drops a subtree",
			modules: diskPart + tablePart + `{ disko.devices.disk.main.content.partitions.swap = lib.mkIf false { size = "1G"; }; }`,
			body:    `builtins.attrNames cfg.disko.devices.disk.main.content.partitions`,
			want:    `["ESP"]`,
		},
		{
			name:    "system.build has disko's and nixos-anywhere's names",
			modules: ``,
			body:    `builtins.attrNames cfg.system.build == builtins.sort builtins.lessThan (l.scriptAttrNames ++ l.extraBuildAttrNames)`,
			want:    `true`,
		},
		{
			name:    "generatedConfig: the file is applied without building the compiler",
			modules: `{ imports = [ demo ]; disko.generatedConfig = GENERATED; }`,
			body:    `{ fs = cfg.fileSystems; luks = builtins.attrNames cfg.boot.initrd.luks.devices; checks = map (c: c.name) cfg.system.checks; build = builtins.filter (n: builtins.substring 0 18 n == "diskoGeneratedConf") (builtins.attrNames cfg.system.build); asserts = map (a: a.assertion) cfg.assertions; }`,
			want:    `{"fs":{"/":{"device":"/dev/pool/root","fsType":"ext4","options":[]},"/boot":{"device":"/dev/b","fsType":"vfat","options":["umask=0077"]},"/home":{"device":"/dev/pool/home","fsType":"ext4","options":[]}},"luks":["crypted"],"checks":["disko-generated-config-check"],"build":["diskoGeneratedConfigCheck","diskoGeneratedConfigDiff"],"asserts":[true,true,true]}`,
		},
		{
			name:    "options the module does not apply fail an assertion",
			modules: `{ imports = [ demo ]; disko.generatedConfig = UNKNOWN; }`,
			body:    `map (a: { inherit (a) assertion; m = builtins.match ".*(services).*" a.message != null; }) cfg.assertions`,
			want:    `[{"assertion":true,"m":false},{"assertion":false,"m":true},{"assertion":false,"m":false}]`,
		},
		{
			name:    "enableConfig = false applies nothing and builds nothing",
			modules: `{ imports = [ demo ]; disko.enableConfig = false; }`,
			body:    `{ fs = cfg.fileSystems; checks = cfg.system.checks; asserts = map (a: a.assertion) cfg.assertions; boot = cfg.boot.initrd; }`,
			want:    `{"fs":{},"checks":[],"asserts":[true],"boot":{"availableKernelModules":[],"kernelModules":[],"luks":{"devices":{}},"systemd":{"enable":false}}}`,
		},
		{
			name:    "an empty layout applies nothing and builds nothing",
			modules: ``,
			body:    `{ fs = cfg.fileSystems; swap = cfg.swapDevices; luks = cfg.boot.initrd.luks.devices; asserts = map (a: a.assertion) cfg.assertions; }`,
			want:    `{"fs":{},"swap":[],"luks":{},"asserts":[true]}`,
		},
	}
	generated := filepath.Join(t.TempDir(), "disk.generated.nix")
	if err := os.WriteFile(generated, []byte(`{ fileSystems."/" = { device = "/dev/pool/root"; fsType = "ext4"; options = [ ]; }; fileSystems."/boot" = { device = "/dev/b"; fsType = "vfat"; options = [ "umask=0077" ]; }; fileSystems."/home" = { device = "/dev/pool/home"; fsType = "ext4"; options = [ ]; }; boot.initrd.luks.devices.crypted = { device = "/dev/x"; allowDiscards = true; keyFile = "/tmp/secret.key"; }; boot.initrd.kernelModules = [ "dm-snapshot" ]; swapDevices = [ ]; }`), 0o644); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(t.TempDir(), "unknown.generated.nix")
	if err := os.WriteFile(unknown, []byte(`{ fileSystems = { }; services.x = 1; }`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got any
			modules := strings.NewReplacer("GENERATED", generated, "UNKNOWN", unknown).Replace(tc.modules)
			evalJSON(t, moduleExpr(t, lib, "", "[ "+modules+" ]", tc.body), &got)
			gb, _ := json.Marshal(got)
			if !jsonEqual(t, gb, []byte(tc.want)) {
				t.Errorf("got:  %s\nwant: %s", gb, strings.Join(strings.Fields(tc.want), " "))
			}
		})
	}
}

// TestModuleErrors checks that wrong definitions fail with the module system's message
// naming the option.
func TestModuleErrors(t *testing.T) {
	needNix(t)
	lib := needLib(t)
	tests := []struct {
		name, modules, body, want string
	}{
		{"two different devices", diskPart + `{ disko.devices.disk.main.device = "/dev/vdb"; }`, `builtins.toJSON cfg.system.build.diskoCompiled.layout`,
			"The option `disko.devices.disk.main.device' has conflicting definition values"},
		{"a string and a list", diskPart + `{ disko.devices.disk.main.device = [ "/dev/vdb" ]; }`, `builtins.toJSON cfg.system.build.diskoCompiled.layout`,
			"The option `disko.devices.disk.main.device' has definitions of different kinds"},
		{"an unknown collection", `{ disko.devices.disks.main.device = "/dev/vda"; }`, `builtins.toJSON cfg.system.build.diskoCompiled.layout`,
			"The option `disko.devices.disks' does not exist"},
		{"a function", diskPart + `{ disko.devices.disk.main.content = x: x; }`, `builtins.toJSON cfg.system.build.diskoCompiled.layout`,
			"is not of type `disko device tree"},
		{"without generatedConfig the config is read from a build (IFD), which fails without a compiler", `demo`, `cfg.fileSystems`,
			"disko-nixos-config.drv"},
		{"scripts without disks", `{ disko.devices.nodev."/tmp".fsType = "tmpfs"; }`, `cfg.system.build.format.name`,
			"No disks defined, did you forget to import your disko config?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := evalError(t, moduleExpr(t, lib, "", "[ "+tc.modules+" ]", tc.body))
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error does not contain %q:\n%s", tc.want, msg)
			}
		})
	}
}

// TestModuleCompiles evaluates the module with the real compiler: the NixOS config comes
// through import-from-derivation and holds every value of `disko-compile nixos-config`
// (the stand-in's other options keep their defaults); the scripts
// nixos-anywhere runs build; the generated file's check passes for a fresh file.
func TestModuleCompiles(t *testing.T) {
	needNix(t)
	lib := needLib(t)
	dir := needCompiler(t)
	layout := filepath.Join(root(t), "examples", "disk-config.nix")

	var got struct {
		FileSystems json.RawMessage `json:"fileSystems"`
		Boot        json.RawMessage `json:"boot"`
		SwapDevices json.RawMessage `json:"swapDevices"`
	}
	// --read-write-mode: the config is read back from a build (IFD).
	evalJSON(t, moduleExpr(t, lib, dir, `[ demo ]`, `{ inherit (cfg) fileSystems boot swapDevices; }`), &got, "--read-write-mode")
	var want struct {
		FileSystems json.RawMessage `json:"fileSystems"`
		Boot        json.RawMessage `json:"boot"`
		SwapDevices json.RawMessage `json:"swapDevices"`
	}
	if err := json.Unmarshal(compiler(t, dir, "nixos-config", layout), &want); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want json.RawMessage
	}{{"fileSystems", got.FileSystems, want.FileSystems}, {"boot", got.Boot, want.Boot}, {"swapDevices", got.SwapDevices, want.SwapDevices}} {
		if !jsonContains(t, c.got, c.want) {
			t.Errorf("config.%s = %s, want disko-compile's %s", c.name, c.got, c.want)
		}
	}

	// The computed defaults disko users read from their own modules (disko's values).
	var defaults any
	evalJSON(t, moduleExpr(t, lib, dir, `[ demo ]`, `let d = cfg.disko.devices.disk.main; esp = d.content.partitions.ESP; in { inherit (esp) device label priority; espName = esp.name; inherit (d) name imageName imageSize; }`), &defaults, "--read-write-mode")
	if gb, _ := json.Marshal(defaults); !jsonEqual(t, gb, []byte(`{"device":"/dev/disk/by-partlabel/disk-main-ESP","label":"disk-main-ESP","priority":1000,"espName":"ESP","name":"main","imageName":"main","imageSize":"2G"}`)) {
		t.Errorf("computed defaults: %s", gb)
	}

	generated := filepath.Join(t.TempDir(), "disk-config.generated.nix")
	if err := os.WriteFile(generated, compiler(t, dir, "nixos-config", "--nix", layout), 0o644); err != nil {
		t.Fatal(err)
	}
	attrs := []string{"diskoScript", "diskoScriptNoDeps", "mountScript", "formatScript", "destroyFormatMount", "unmountNoDeps"}
	var exprs []string
	for _, a := range attrs {
		exprs = append(exprs, "cfg.system.build."+a)
	}
	exprs = append(exprs, "cfg.system.build.diskoGeneratedConfigCheck")
	out, _, err := runNix("nix-build", "--no-out-link", "-E", moduleExpr(t, lib, dir,
		`[ demo { disko.generatedConfig = `+generated+`; } ]`, "[ "+strings.Join(exprs, " ")+" ]"))
	if err != nil {
		t.Fatal(err)
	}
	if paths := strings.Fields(out); len(paths) != len(exprs) || !slices.ContainsFunc(paths, func(p string) bool { return strings.HasSuffix(p, "-disko") }) {
		t.Errorf("built %v, want %d outputs including diskoScript's", paths, len(exprs))
	}
}

// TestModuleCorpus defines every layout of the corpus (internal/config/testdata/corpus,
// disko's examples as JSON) through the module, split the way users split configs
// (each disk's content in a module of its own, every other collection in another),
// and checks that the merged tree is the layout, unchanged.
func TestModuleCorpus(t *testing.T) {
	needNix(t)
	lib := needLib(t)
	files, err := filepath.Glob(filepath.Join(root(t), "internal", "config", "testdata", "corpus", "*.json"))
	if err != nil || len(files) == 0 {
		t.Skipf("no corpus JSON in internal/config/testdata/corpus (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			modules := fmt.Sprintf(`let
  layout = builtins.fromJSON (builtins.readFile %s);
  disks = layout.disk or { };
in
  [ { disko.devices = builtins.removeAttrs layout [ "disk" ]; } ]
  ++ map (n: { disko.devices.disk.${n} = builtins.removeAttrs disks.${n} [ "content" ]; }) (builtins.attrNames disks)
  ++ map (n: { disko.devices.disk.${n}.content = disks.${n}.content; }) (builtins.filter (n: disks.${n} ? content) (builtins.attrNames disks))`, f)
			var same bool
			evalJSON(t, moduleExpr(t, lib, "", modules,
				fmt.Sprintf(`cfg.system.build.diskoCompiled.layout == l.normalize (builtins.fromJSON (builtins.readFile %s))`, f)), &same)
			if !same {
				t.Errorf("%s: merging the split layout through the module changed it", f)
			}
		})
	}
}
