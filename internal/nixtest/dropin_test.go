package nixtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// noIFD forbids import-from-derivation outright (on top of nix-instantiate's read-only
// mode, where any build fails): an evaluation that passes with it built nothing.
var noIFD = []string{"--option", "allow-import-from-derivation", "false"}

// jsonContains reports whether every value of want is in got at the same place (maps:
// got may have more keys; lists and scalars: equal).
func jsonContains(t *testing.T, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decoding %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("decoding %s: %v", want, err)
	}
	return contains(g, w)
}

func contains(got, want any) bool {
	if wl, ok := want.([]any); ok {
		gl, ok := got.([]any)
		if !ok || len(gl) != len(wl) {
			return false
		}
		for i := range wl {
			if !contains(gl[i], wl[i]) {
				return false
			}
		}
		return true
	}
	wm, ok := want.(map[string]any)
	if !ok {
		return reflect.DeepEqual(got, want)
	}
	gm, ok := got.(map[string]any)
	if !ok {
		return false
	}
	for k, wv := range wm {
		if gv, ok := gm[k]; !ok || !contains(gv, wv) {
			return false
		}
	}
	return true
}

// TestModuleBuildsNothing: with no compiler at all and import-from-derivation forbidden,
// everything that does not need a value only the compiler knows evaluates. NixOS-shaped
// option trees (nixos-stub.nix) make any attribute set whose names come from a build fail
// here, as in NixOS.
func TestModuleBuildsNothing(t *testing.T) {
	needNix(t)
	lib := needLib(t)
	tests := []struct {
		name, modules, body, want string
	}{
		{"an unrelated option", `demo`, `cfg.networking.hostName`, `"nixos"`},
		{"the names of system.build", `demo`, `builtins.length (builtins.attrNames cfg.system.build) == builtins.length (l.scriptAttrNames ++ l.extraBuildAttrNames)`, `true`},
		{"mount points, their fsType and LUKS names come from the layout", `demo`,
			`{ fs = builtins.mapAttrs (_: fs: fs.fsType) cfg.fileSystems; luks = builtins.attrNames cfg.boot.initrd.luks.devices; }`,
			`{"fs":{"/":"ext4","/boot":"vfat","/home":"ext4"},"luks":["crypted"]}`},
		{"boot options the layout does not set", `demo`,
			`{ inherit (cfg.boot) resumeDevice; grub = cfg.boot.loader.grub.devices; swraid = cfg.boot.swraid.enable; systemd = cfg.boot.initrd.systemd.enable; swap = cfg.swapDevices; }`,
			`{"resumeDevice":"","grub":[],"swraid":false,"systemd":false,"swap":[]}`},
		{"enableConfig = false applies nothing", `demo { disko.enableConfig = false; }`,
			`{ fs = cfg.fileSystems; boot = cfg.boot.initrd; swap = cfg.swapDevices; asserts = map (a: a.assertion) cfg.assertions; }`,
			`{"fs":{},"boot":{"availableKernelModules":[],"kernelModules":[],"luks":{"devices":{}},"systemd":{"enable":false}},"swap":[],"asserts":[true]}`},
		{"static defaults and the user's values of disko.devices", `demo`,
			`{ inherit (cfg.disko.devices.disk.main) imageSize device destroy; t = cfg.disko.devices.disk.main.content.type; parts = builtins.attrNames cfg.disko.devices.disk.main.content.partitions; vg = builtins.attrNames cfg.disko.devices.lvm_vg; }`,
			`{"imageSize":"2G","device":"/dev/vda","destroy":true,"t":"gpt","parts":["ESP","luks"],"vg":["pool"]}`},
		{"every node shows every option of its type", `demo`,
			`builtins.attrNames cfg.disko.devices.disk.main.content.partitions.ESP`,
			`["alignment","attributes","content","device","end","hybrid","label","name","priority","size","start","type","uuid"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got any
			evalJSON(t, moduleExpr(t, lib, "", "[ "+tc.modules+" ]", tc.body), &got, noIFD...)
			gb, _ := json.Marshal(got)
			if !jsonEqual(t, gb, []byte(tc.want)) {
				t.Errorf("got:  %s\nwant: %s", gb, tc.want)
			}
		})
	}

	// A value only the compiler knows is the one thing that needs a build.
	_, stderr, err := runNix("nix-instantiate", append([]string{"--eval", "--strict", "--json"}, append(noIFD, "-E",
		moduleExpr(t, lib, "", `[ demo ]`, `cfg.disko.devices.disk.main.content.partitions.ESP.device`))...)...)
	if err == nil || !strings.Contains(stderr, "disko-nixos-config") {
		t.Errorf("reading a computed device path without a compiler: err %v, want a failed build of disko-nixos-config:\n%s", err, stderr)
	}
}

// TestModuleDiskoOptions: every option of disko's module is accepted with disko's type
// and default; the ones without an effect yet warn when set; vmWithDisko takes
// disko.memSize.
func TestModuleDiskoOptions(t *testing.T) {
	needNix(t)
	lib := needLib(t)
	defaults := `{ inherit (cfg.disko) memSize testMode; ib = builtins.removeAttrs cfg.disko.imageBuilder [ "pkgs" "kernelPackages" ]; kp = cfg.disko.imageBuilder.kernelPackages == cfg.boot.kernelPackages; tests = cfg.disko.tests; vm = builtins.isAttrs cfg.virtualisation.vmVariantWithDisko; warnings = cfg.warnings; }`
	var got any
	evalJSON(t, moduleExpr(t, lib, "", `[ demo ]`, defaults), &got, noIFD...)
	want := `{"memSize":1024,"testMode":false,"kp":true,"vm":true,"warnings":[],
		"ib":{"enableBinfmt":false,"qemu":null,"extraRootModules":[],"extraPostVM":":","extraDependencies":[],"name":"nixos-disko-images","copyNixStore":true,"copyNixStoreThreads":"auto","extraConfig":{},"imageFormat":"raw"},
		"tests":{"bootCommands":"","efi":false,"enableOCR":false,"extraChecks":"","extraConfig":{}}}`
	if gb, _ := json.Marshal(got); !jsonEqual(t, gb, []byte(want)) {
		t.Errorf("defaults:\ngot:  %s\nwant: %s", gb, strings.Join(strings.Fields(want), " "))
	}

	set := `{
		disko.memSize = 2048; disko.testMode = true;
		disko.imageBuilder = { enableBinfmt = true; qemu = "qemu-system-aarch64"; pkgs = { }; kernelPackages = { }; extraRootModules = [ "bcachefs" ]; extraPostVM = "true"; extraDependencies = [ ]; name = "img"; copyNixStore = false; copyNixStoreThreads = 4; extraConfig = { }; imageFormat = "qcow2"; };
		disko.tests = { bootCommands = "x"; efi = true; enableOCR = true; extraChecks = "y"; extraConfig = { }; };
		virtualisation.vmVariantWithDisko = { networking.hostName = "vm"; };
	}`
	var warnings []string
	evalJSON(t, moduleExpr(t, lib, "", "[ demo "+set+" ]", `cfg.warnings`), &warnings, noIFD...)
	if len(warnings) != 7+5+1 {
		t.Errorf("%d warnings, want one per option set that has no effect yet (13):\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
	if slices.ContainsFunc(warnings, func(s string) bool { return strings.Contains(s, "vmVariantWithDisko") }) {
		t.Errorf("virtualisation.vmVariantWithDisko takes effect in vmWithDisko, but a warning says it has none:\n%s", strings.Join(warnings, "\n"))
	}
	for _, w := range []string{"disko.imageBuilder.qemu is set", "disko.tests.efi is set", "disko.testMode is set"} {
		if !slices.ContainsFunc(warnings, func(s string) bool { return strings.Contains(s, w) && strings.Contains(s, "no effect") }) {
			t.Errorf("no warning says %q ... no effect:\n%s", w, strings.Join(warnings, "\n"))
		}
	}
	// These take effect in diskoImages / diskoImagesScript (TestModuleSystemBuilds).
	for _, o := range []string{"imageFormat", "copyNixStore", "name", "extraPostVM", "extraDependencies"} {
		if slices.ContainsFunc(warnings, func(s string) bool { return strings.Contains(s, "disko.imageBuilder."+o+" is set") }) {
			t.Errorf("disko.imageBuilder.%s takes effect, but a warning says it has none:\n%s", o, strings.Join(warnings, "\n"))
		}
	}
	var typeErr string
	_, typeErr, _ = runNix("nix-instantiate", "--eval", "--strict", "-E", moduleExpr(t, lib, "", `[ demo { disko.imageBuilder.imageFormat = "vmdk"; } ]`, `cfg.disko.imageBuilder.imageFormat`))
	if !strings.Contains(typeErr, "disko.imageBuilder.imageFormat") {
		t.Errorf("a wrong imageFormat: want a type error naming the option, got:\n%s", typeErr)
	}

	// The documentation of every option renders (as the NixOS manual does) without a build.
	var documented []string
	evalJSON(t, moduleExpr(t, lib, "", `[ demo ]`, `map (o: o.name) (builtins.filter (o: !o.internal && (lib.hasPrefix "disko." o.name || lib.hasPrefix "virtualisation." o.name)) (lib.optionAttrSetToDocList ev.options))`), &documented, noIFD...)
	for _, name := range []string{"disko.devices", "disko.memSize", "disko.imageBuilder.copyNixStoreThreads", "disko.imageBuilder.pkgs", "disko.imageBuilder.kernelPackages", "disko.tests.efi", "virtualisation.vmVariantWithDisko"} {
		if !slices.Contains(documented, name) {
			t.Errorf("%s is not in the rendered documentation: %v", name, documented)
		}
	}

	// vmWithDisko boots images of the VM's system with disko.memSize of memory.
	var vm string
	evalJSON(t, moduleExpr(t, lib, "", `[ demo { disko.memSize = 2048; system.build.toplevel = builtins.toFile "nixos-system-stand-in" ""; } ]`, `cfg.system.build.vmWithDisko.text`), &vm, noIFD...)
	for _, w := range []string{"disko-compile image --format raw --system /nix/store/", "qemu-system-x86_64", "-m 2048"} {
		if !strings.Contains(vm, w) {
			t.Errorf("system.build.vmWithDisko does not run %q:\n%s", w, vm)
		}
	}
}

// TestModuleTypos: an option name a node does not have is an error naming its path, both
// when the node is read and in an assertion that lists every one (no build needed).
func TestModuleTypos(t *testing.T) {
	needNix(t)
	lib := needLib(t)
	typo := `demo { disko.devices.disk.main.contnet = { }; disko.devices.disk.main.content.partitions.ESP.content.mountpoints = "/efi"; }`
	var msgs []string
	evalJSON(t, moduleExpr(t, lib, "", "[ "+typo+" ]", `[ (builtins.head cfg.assertions).message ]`), &msgs, noIFD...)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "disko.devices.disk.main.contnet") || !strings.Contains(msgs[0], "disko.devices.disk.main.content.partitions.ESP.content.mountpoints") {
		t.Errorf("assertion messages %q, want one naming both typos", msgs)
	}
	msg := evalError(t, moduleExpr(t, lib, "", "[ "+typo+" ]", `cfg.disko.devices.disk.main.device`))
	if !strings.Contains(msg, "The option `disko.devices.disk.main.contnet' does not exist") {
		t.Errorf("reading the node: %s", msg)
	}
	msg = evalError(t, moduleExpr(t, lib, "", `[ { disko.devices.disk.main = { device = "/dev/vda"; content.type = "gtp"; }; } ]`, `cfg.disko.devices.disk.main.content`))
	if !strings.Contains(msg, "disko.devices.disk.main.content.type") || !strings.Contains(msg, "gpt") {
		t.Errorf("an unknown node type: %s", msg)
	}

	// Values of the wrong type or outside an enum: at the leaf when read, and all of
	// them in the assertion.
	wrong := `demo { disko.devices.disk.main.imageSize = 2; disko.devices.disk.main.content.partitions.ESP.content.mountOptions = [ 1 ]; disko.devices.lvm_vg.pool.lvs.root.lvm_type = "raid7"; }`
	msg = evalError(t, moduleExpr(t, lib, "", "[ "+wrong+" ]", `cfg.disko.devices.disk.main.imageSize`))
	if !strings.Contains(msg, "The option `disko.devices.disk.main.imageSize' has type integer, expected string") {
		t.Errorf("reading a leaf of the wrong type: %s", msg)
	}
	evalJSON(t, moduleExpr(t, lib, "", "[ "+wrong+" ]", `[ (builtins.head cfg.assertions).message ]`), &msgs, noIFD...)
	for _, want := range []string{"disko.devices.disk.main.imageSize (has type integer", "disko.devices.disk.main.content.partitions.ESP.content.mountOptions (has an element 1", `disko.devices.lvm_vg.pool.lvs.root.lvm_type (is "raid7", expected one of`} {
		if !strings.Contains(msgs[0], want) {
			t.Errorf("assertion message %q lacks %q", msgs[0], want)
		}
	}
}

// TestModuleWithDiskosModule: importing disko's module as well fails with one error that
// says which module to drop.
func TestModuleWithDiskosModule(t *testing.T) {
	needNix(t)
	lib := needLib(t)
	modules := []string{filepath.Join(mustAbs(t, "."), "testdata", "stand-in-disko-module.nix")}
	if src := os.Getenv("DISKO_SRC"); src != "" {
		modules = append(modules, filepath.Join(src, "module.nix"))
	} else {
		t.Log("DISKO_SRC is not set: checked with the stand-in of disko's module only")
	}
	for _, m := range modules {
		msg := evalError(t, moduleExpr(t, lib, "", fmt.Sprintf(`[ %s demo ]`, m), `cfg.system.build.diskoScript.name`))
		if !strings.Contains(msg, "already declared") || !strings.Contains(msg, "drop disko.nixosModules.disko from the imports") {
			t.Errorf("importing %s too: %s", m, msg)
		}
	}
}

// TestModuleDefaultsCorpus reads config.disko.devices of every corpus layout through the
// module with the real compiler: every value `disko-compile json` gives is there, and
// the computed device paths agree with what disko itself put in the NixOS config
// (the corpus' expected/*.nixos.json, made by disko): each mounted filesystem's device,
// each swap device, each LUKS device.
func TestModuleDefaultsCorpus(t *testing.T) {
	needNix(t)
	lib := needLib(t)
	dir := needCompiler(t)
	corpus := filepath.Join(root(t), "..", "shared", "corpus", "disko-examples")
	if env := os.Getenv("DISKO_CORPUS"); env != "" {
		corpus = env
	}
	files, _ := filepath.Glob(filepath.Join(corpus, "*.nix"))
	if len(files) == 0 {
		t.Skipf("no disko example corpus in %s (set DISKO_CORPUS)", corpus)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".nix")
		t.Run(name, func(t *testing.T) {
			var got any
			layout := fmt.Sprintf(`(let f = import %s; in if builtins.isFunction f then f { inherit lib; } else f)`, f)
			evalJSON(t, moduleExpr(t, lib, dir, "[ "+layout+" ]", `builtins.removeAttrs cfg.disko.devices [ "_module" ]`), &got, "--read-write-mode")
			gb, _ := json.Marshal(got)
			// The module's assertions include nixosShape == the compiler's NixOS config shape.
			var failed []string
			evalJSON(t, moduleExpr(t, lib, dir, "[ "+layout+" ]", `map (a: a.message) (builtins.filter (a: !a.assertion) cfg.assertions)`), &failed, "--read-write-mode")
			if len(failed) > 0 {
				t.Errorf("failed assertions: %q", failed)
			}
			args := []string{"json", f}
			if name == "with-lib" {
				args = []string{"json", "--nixpkgs", filepath.Dir(lib), f}
			}
			if want := compiler(t, dir, args...); !jsonContains(t, gb, want) {
				t.Errorf("config.disko.devices lacks values of disko-compile json:\ngot:  %s\nwant: %s", gb, want)
			}
			expected, err := os.ReadFile(filepath.Join(corpus, "expected", name+".nixos.json"))
			if err != nil {
				t.Skipf("no disko output for %s: %v", name, err)
			}
			var disko struct {
				FileSystems map[string]struct{ Device string } `json:"fileSystems"`
				SwapDevices []struct{ Device string }          `json:"swapDevices"`
				Boot        struct {
					Initrd struct {
						Luks struct {
							Devices map[string]struct{ Device string }
						}
					}
				}
			}
			if err := json.Unmarshal(expected, &disko); err != nil {
				t.Fatal(err)
			}
			checked := 0
			walk(got, func(n map[string]any) {
				device, _ := n["device"].(string)
				switch n["type"] {
				case "filesystem":
					if mp, _ := n["mountpoint"].(string); mp != "" {
						checked++
						if want := disko.FileSystems[mp].Device; device != want {
							t.Errorf("filesystem at %s: device %q, disko's %q", mp, device, want)
						}
					}
				case "swap":
					checked++
					if !slices.ContainsFunc(disko.SwapDevices, func(s struct{ Device string }) bool { return s.Device == device }) {
						t.Errorf("swap device %q is not among disko's %v", device, disko.SwapDevices)
					}
				case "luks":
					if name, _ := n["name"].(string); n["initrdUnlock"] == true {
						checked++
						if want := disko.Boot.Initrd.Luks.Devices[name].Device; device != want {
							t.Errorf("LUKS %s: device %q, disko's %q", name, device, want)
						}
					}
				}
			})
			t.Logf("%d device paths checked against disko's", checked)
		})
	}
}

// walk calls f on every object of a decoded JSON value.
func walk(v any, f func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		f(x)
		for _, c := range x {
			walk(c, f)
		}
	case []any:
		for _, c := range x {
			walk(c, f)
		}
	}
}

// TestNixosShape checks, with builtins only (no nixpkgs, so in CI too), on every corpus
// layout: the shape the module predicts from the layout (lib.nix nixosShape: mount
// points, LUKS names, which boot options) is the shape of `disko-compile nixos-config`,
// and lib.nix resolveDevices (what config.disko.devices shows) holds every value of
// `disko-compile json`.
func TestNixosShape(t *testing.T) {
	needNix(t)
	dir := needCompiler(t)
	files, err := filepath.Glob(filepath.Join(root(t), "internal", "config", "testdata", "corpus", "*.json"))
	if err != nil || len(files) == 0 {
		t.Skipf("no corpus JSON in internal/config/testdata/corpus (%v)", err)
	}
	schema := filepath.Join(root(t), "schema", "disko.schema.json")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			tmp := t.TempDir()
			nixos, resolved := filepath.Join(tmp, "nixos.json"), filepath.Join(tmp, "resolved.json")
			if err := os.WriteFile(nixos, compiler(t, dir, "nixos-config", f), 0o644); err != nil {
				t.Fatal(err)
			}
			want := compiler(t, dir, "json", f)
			if err := os.WriteFile(resolved, want, 0o644); err != nil {
				t.Fatal(err)
			}
			var got struct {
				Same     bool            `json:"same"`
				Devices  json.RawMessage `json:"devices"`
				Shape    json.RawMessage `json:"shape"`
				Compiled json.RawMessage `json:"compiled"`
			}
			evalJSON(t, fmt.Sprintf(`let
  l = import %s/nix/lib.nix;
  read = f: builtins.fromJSON (builtins.readFile f);
  layout = read %s;
  shape = l.nixosShape layout;
  compiled = l.shapeOf (read %s);
in { same = shape == compiled; inherit shape compiled; devices = l.resolveDevices (read %s) layout (read %s); }`, root(t), f, nixos, schema, resolved), &got)
			if !got.Same {
				t.Errorf("nixosShape %s, compiler's %s", got.Shape, got.Compiled)
			}
			if !jsonContains(t, got.Devices, want) {
				t.Errorf("resolveDevices lacks values of disko-compile json:\ngot:  %s\nwant: %s", got.Devices, want)
			}
		})
	}
}

// TestDefaultsEqualDisko compares config.disko.devices, read through our module (real
// compiler, IFD), with the same option tree computed by nix-community/disko's own types
// (its source in DISKO_SRC, e.g. extracted from the disko mirror), on every corpus
// layout: every value disko shows must be there, equal. Skips without DISKO_SRC (disko's
// source is not part of this repository).
func TestDefaultsEqualDisko(t *testing.T) {
	needNix(t)
	lib := needLib(t)
	src := os.Getenv("DISKO_SRC")
	if src == "" {
		t.Skip("DISKO_SRC is not set: the oracle is disko's own lib/types (e.g. git -C <disko mirror> archive HEAD | tar -x -C /tmp/disko-src; DISKO_SRC=/tmp/disko-src)")
	}
	dir := needCompiler(t)
	corpus := filepath.Join(root(t), "..", "shared", "corpus", "disko-examples")
	if env := os.Getenv("DISKO_CORPUS"); env != "" {
		corpus = env
	}
	files, _ := filepath.Glob(filepath.Join(corpus, "*.nix"))
	if len(files) == 0 {
		t.Skipf("no disko example corpus in %s (set DISKO_CORPUS)", corpus)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var disko any
			evalJSON(t, fmt.Sprintf(`import %s/testdata/disko-devices.nix { libPath = %s; diskoSrc = %s; layout = %s; }`, mustAbs(t, "."), lib, src, f), &disko)
			layout := fmt.Sprintf(`(let f = import %s; in if builtins.isFunction f then f { inherit lib; } else f)`, f)
			var ours any
			evalJSON(t, moduleExpr(t, lib, dir, "[ "+layout+" ]", `builtins.removeAttrs cfg.disko.devices [ "_module" ]`), &ours, "--read-write-mode")
			for _, d := range differences("disko.devices", ours, disko) {
				t.Error(d)
			}
		})
	}
}

// differences lists where got lacks or differs from a value of want (maps: every key of
// want; lists: same length, element-wise).
func differences(path string, got, want any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: ours %v, disko's %v", path, got, want)}
		}
		var out []string
		for _, k := range slices.Sorted(maps.Keys(w)) {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing here, disko's %v", path, k, w[k]))
				continue
			}
			out = append(out, differences(path+"."+k, gv, w[k])...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: ours %v, disko's %v", path, got, want)}
		}
		var out []string
		for i := range w {
			out = append(out, differences(fmt.Sprintf("%s[%d]", path, i), g[i], w[i])...)
		}
		return out
	}
	if !reflect.DeepEqual(got, want) {
		return []string{fmt.Sprintf("%s: ours %v, disko's %v", path, got, want)}
	}
	return nil
}
