package nixtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// libExpr evaluates body with `l` bound to nix/lib.nix and `ex` to the examples.
func libExpr(t *testing.T, body string) string {
	r := root(t)
	return fmt.Sprintf(`let
  l = import %s/nix/lib.nix;
  demo = import %s/examples/disk-config.nix;
  simple = import %s/examples/disk-config-simple.nix;
in %s`, r, r, r, body)
}

// TestLib evaluates the pure helpers of nix/lib.nix with builtins only (the same code
// the module, the flake and lib.compile run).
func TestLib(t *testing.T) {
	needNix(t)
	tests := []struct {
		name string
		expr string
		want string
	}{
		{
			name: "modes map disko's CLI modes to script files, system.build attributes and executables",
			expr: `map (m: [ m.mode m.file m.attr m.bin ]) l.modes`,
			want: `[["destroy","destroy.sh","destroy","disko-destroy"],
				["format","format.sh","format","disko-format"],
				["mount","mount.sh","mount","disko-mount"],
				["unmount","unmount.sh","unmount","disko-unmount"],
				["format,mount","format-mount.sh","formatMount","disko-format-mount"],
				["destroy,format,mount","destroy-format-mount.sh","destroyFormatMount","disko-destroy-format-mount"]]`,
		},
		{
			name: "legacy scripts wrap the new ones; the destroying ones skip the prompt as disko's did",
			expr: `map (s: [ s.attr s.name s.target s.args ]) l.legacyScripts`,
			want: `[["destroyScript","disko-destroy","destroy",["--yes-wipe-all-disks"]],
				["formatScript","disko-format","format",[]],
				["mountScript","disko-mount","mount",[]],
				["diskoScript","disko","destroyFormatMount",["--yes-wipe-all-disks"]]]`,
		},
		{
			name: "normalize accepts a disk-config file and the bare tree alike",
			expr: `l.normalize demo == l.normalize demo.disko.devices && l.normalize demo == demo.disko.devices`,
			want: `true`,
		},
		{
			name: "normalize drops the option's _module, disko internals and empty collections",
			expr: `l.normalize { _module.args = { f = x: x; }; _meta = 1; disk.a.device = "/dev/a"; lvm_vg = { }; mdadm = { }; }`,
			want: `{"disk":{"a":{"device":"/dev/a"}}}`,
		},
		{
			name: "a path stays a path string and never lands in the store",
			expr: `let j = l.toJSON { disk.a.content.settings.keyFile = /run/keys/secret.key; }; in [ j (builtins.hasContext j) ]`,
			want: `["{\"disk\":{\"a\":{\"content\":{\"settings\":{\"keyFile\":\"/run/keys/secret.key\"}}}}}", false]`,
		},
		{
			name: "a package becomes its store path",
			expr: `l.normalize { disk.a.postCreateHook = { outPath = "/nix/store/00000000000000000000000000000000-hook"; type = "derivation"; }; }`,
			want: `{"disk":{"a":{"postCreateHook":"/nix/store/00000000000000000000000000000000-hook"}}}`,
		},
		{
			name: "lists are normalised element by element",
			expr: `l.normalize { disk.a.content.partitions = [ { keyFile = /k; } ]; }`,
			want: `{"disk":{"a":{"content":{"partitions":[{"keyFile":"/k"}]}}}}`,
		},
		{
			name: "hasDisks and isEmpty",
			expr: `[ (l.hasDisks demo) (l.hasDisks { nodev."/tmp".fsType = "tmpfs"; }) (l.isEmpty { disk = { }; }) (l.isEmpty {}) (l.isEmpty simple) ]`,
			want: `[true,false,true,true,false]`,
		},
		{
			name: "merge strategy: sets merge, lists concatenate, hooks join, the rest must agree",
			expr: `[
				(l.mergeStrategy [ "disk" "main" ] [ { } { } ])
				(l.mergeStrategy [ "disk" "main" "content" "mountOptions" ] [ [ "a" ] [ "b" ] ])
				(l.mergeStrategy [ "disk" "main" "postCreateHook" ] [ "a" "b" ])
				(l.mergeStrategy [ "disk" "main" "device" ] [ "/dev/a" "/dev/b" ])
				(l.mergeStrategy [ "disk" "main" "device" ] [ "/dev/a" [ "x" ] ])
				(l.mergeStrategy [ "disk" "main" "postCreateHook" ] [ { outPath = "/x"; } ])
				(l.mergeStrategy [ ] [ 1 2 ])
			]`,
			want: `["attrs","list","lines","equal","conflict","equal","equal"]`,
		},
		{
			name: "tools of the small example: GPT, vfat and ext4 only",
			expr: `l.toolsFor simple`,
			want: `["bash","coreutils","dosfstools","e2fsprogs","findutils","gawk","gnugrep","gnused","gptfdisk","jq","parted","systemdMinimal","util-linux"]`,
		},
		{
			name: "tools of the LUKS + LVM example add cryptsetup, lvm2 and kmod",
			expr: `builtins.filter (n: !(builtins.elem n (l.toolsFor simple))) (l.toolsFor demo)`,
			want: `["cryptsetup","kmod","lvm2"]`,
		},
		{
			name: "tools follow node types and formats anywhere in the tree",
			expr: `l.toolsFor {
				zpool.z = { type = "zpool"; datasets.a = { type = "zfs_fs"; }; };
				mdadm.m = { type = "mdadm"; content = { type = "btrfs"; }; };
				nodev."/tmp" = { fsType = "tmpfs"; };
				disk.d.content = { type = "table"; partitions = [ { content = { type = "filesystem"; format = "xfs"; }; } ]; };
			}`,
			want: `["bash","btrfs-progs","coreutils","findutils","gawk","gnugrep","gnused","jq","mdadm","parted","systemdMinimal","util-linux","xfsprogs","zfs"]`,
		},
		{
			name: "destroy needs what may be ON the disks, whatever the layout says",
			expr: `builtins.filter (n: !(builtins.elem n (l.toolsFor simple))) (l.destroyToolsFor simple)`,
			want: `["cryptsetup","lvm2","mdadm","zfs"]`,
		},
		{
			name: "binPath picks the bin output like lib.getBin",
			expr: `l.binPath [
				{ outPath = "/a"; }
				{ outPath = "/b"; bin = { outPath = "/b-bin"; }; }
				{ outPath = "/c"; outputSpecified = true; bin = { outPath = "/c-bin"; }; }
				{ outPath = "/d"; out = { outPath = "/d-out"; }; }
			]`,
			want: `"/a/bin:/b-bin/bin:/c/bin:/d-out/bin"`,
		},
		{
			name: "splitNixosConfig separates the options the module applies from unknown ones",
			expr: `l.splitNixosConfig { fileSystems."/".device = "/dev/a"; boot = { }; swapDevices = [ ]; services.x = 1; }`,
			want: `{"known":{"boot":{},"fileSystems":{"/":{"device":"/dev/a"}},"swapDevices":[]},"unknown":["services"]}`,
		},
		{
			name: "diffValues names every differing option path",
			expr: `l.diffValues
				{ fileSystems."/" = { device = "/dev/a"; fsType = "ext4"; }; swapDevices = [ ]; boot.x = 1; }
				{ fileSystems."/" = { device = "/dev/b"; fsType = "ext4"; }; swapDevices = [ ]; fileSystems."/home".device = "/dev/c"; }`,
			want: `["boot: only in the generated file: {\"x\":1}",
				"fileSystems./.device: generated file has \"/dev/a\", current layout gives \"/dev/b\"",
				"fileSystems./home: only in the current layout: {\"device\":\"/dev/c\"}"]`,
		},
		{
			name: "diffValues of equal values is empty",
			expr: `l.diffValues { a.b = [ 1 ]; } { a.b = [ 1 ]; }`,
			want: `[]`,
		},
		{
			name: "storeBaseName strips the store hash",
			expr: `map l.storeBaseName [ "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-disk.generated.nix" "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-source/disk.generated.nix" "/home/u/x.nix" ]`,
			want: `["disk.generated.nix","disk.generated.nix","x.nix"]`,
		},
		{
			name: "the source filter keeps the Go module and drops what does not affect the binaries",
			expr: `map (p: l.sourceFilter "/r" p "regular") [
				"/r/go.mod" "/r/go.sum" "/r/cmd" "/r/internal/x/testdata/a.nix" "/r/schema"
				"/r/.git" "/r/internal/.git" "/r/vendor" "/r/nix" "/r/examples" "/r/flake.nix" "/r/flake.lock" "/r/result" "/r/result-bin" "/r/.ci"
				"/r/internal/vendor" "/r/internal/nix"
			]`,
			want: `[true,true,true,true,true, false,false,false,false,false,false,false,false,false,false, true,true]`,
		},
		{
			name: "goVersion reads go.mod's go line",
			expr: `map l.goVersion [ "module x\n\ngo 1.26.0\n" "module x\ngo 1.22\ntoolchain go1.23.1\n" ]`,
			want: `["1.26","1.22"]`,
		},
		{
			name: "goModuleBuilderName names nixpkgs' versioned builder",
			expr: `l.goModuleBuilderName "1.26"`,
			want: `"buildGo126Module"`,
		},
		{
			name: "the regenerate hint names the file and both ways to regenerate it",
			expr: `let h = l.regenerateHint "disk.generated.nix"; in map (s: builtins.match ".*(${s}).*" h != null) [ "disko-compile nixos-config --nix" "diskoNixosConfig" "> disk.generated.nix" ]`,
			want: `[true,true,true]`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got any
			evalJSON(t, libExpr(t, tc.expr), &got)
			gb, _ := json.Marshal(got)
			if !jsonEqual(t, gb, []byte(tc.want)) {
				t.Errorf("%s\n got: %s\nwant: %s", tc.expr, gb, strings.Join(strings.Fields(tc.want), " "))
			}
		})
	}
}

// TestLibErrors checks that bad input fails with a message naming the option path.
func TestLibErrors(t *testing.T) {
	needNix(t)
	tests := []struct {
		name, expr, want string
	}{
		{"a function in the tree", `l.toJSON { disk.main.content = x: x; }`, "disko.devices.disk.main.content: is a function"},
		{"a function in a list", `l.toJSON { disk.main.extraArgs = [ "a" (x: x) ]; }`, "disko.devices.disk.main.extraArgs[1]: is a function"},
		{"devices that are not a set", `l.normalize { disko.devices = [ ]; }`, "disko.devices: expected an attribute set"},
		{"disko without devices", `l.normalize { disko = { }; }`, "has `disko` but no `disko.devices`"},
		{"a NixOS config that is not a set", `l.splitNixosConfig [ ]`, "must be an attribute set, got a list"},
		{"go.mod without go line", `l.goVersion "module x\n"`, "no `go` directive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := evalError(t, libExpr(t, tc.expr))
			if !strings.Contains(msg, tc.want) {
				t.Errorf("%s: error %q does not contain %q", tc.expr, msg, tc.want)
			}
		})
	}
}

// TestScriptAttrNames checks that the module provides every system.build attribute disko
// has for scripts and every one nixos-anywhere reads (<mode>Script[NoDeps] for its
// --disko-mode disko|mount|format and --no-disko-deps).
func TestScriptAttrNames(t *testing.T) {
	needNix(t)
	var names []string
	evalJSON(t, libExpr(t, `l.scriptAttrNames`), &names)
	disko := []string{
		"destroy", "format", "mount", "unmount", "formatMount", "destroyFormatMount",
		"destroyNoDeps", "formatNoDeps", "mountNoDeps", "unmountNoDeps", "formatMountNoDeps", "destroyFormatMountNoDeps",
		"destroyScript", "formatScript", "mountScript", "diskoScript",
		"destroyScriptNoDeps", "formatScriptNoDeps", "mountScriptNoDeps", "diskoScriptNoDeps",
		"disko", "diskoNoDeps",
	}
	var nixosAnywhere []string
	for _, mode := range []string{"disko", "mount", "format"} {
		nixosAnywhere = append(nixosAnywhere, mode+"Script", mode+"ScriptNoDeps")
	}
	for _, want := range append(disko, nixosAnywhere...) {
		if !slices.Contains(names, want) {
			t.Errorf("system.build.%s is missing from scriptAttrNames %v", want, names)
		}
	}
	if len(names) != len(disko) {
		t.Errorf("scriptAttrNames has %d names, disko has %d: %v", len(names), len(disko), names)
	}
}
