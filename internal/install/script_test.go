package install

import (
	"path"
	"strings"
	"testing"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"github.com/diskoanywhere/diskoanywhere/internal/facts"
)

// hostile values for every string that reaches a remote script.
var hostile = []string{
	`/mnt/it's here`,
	`/mnt/$(touch /tmp/pwned)`,
	"/mnt/`id`",
	`/mnt/"quoted" ; rm -rf /`,
	"/mnt/new\nline",
	`/mnt/ünï cødé $HOME`,
}

// assignments parses a script and returns the value each top-level
// variable assignment gives, without running anything.
func assignments(t *testing.T, script string) map[string]string {
	t.Helper()
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(script), "")
	if err != nil {
		t.Fatalf("generated script does not parse: %v\n%s", err, script)
	}
	vals := map[string]string{}
	for _, st := range f.Stmts {
		call, ok := st.Cmd.(*syntax.CallExpr)
		if !ok || len(call.Args) > 0 {
			continue
		}
		for _, a := range call.Assigns {
			if a.Value == nil {
				continue
			}
			// Fields does quote removal; a safely quoted value is one field.
			v, err := expand.Fields(&expand.Config{}, a.Value)
			if err != nil || len(v) != 1 {
				t.Fatalf("assignment %s is not one literal word: %q, %v", a.Name.Value, v, err)
			}
			vals[a.Name.Value] = v[0]
		}
	}
	return vals
}

// TestScriptsQuoteEverything renders every remote script with hostile
// values and checks that each value arrives as exactly one literal word.
func TestScriptsQuoteEverything(t *testing.T) {
	for _, h := range hostile {
		layout := &config.Devices{
			Disk:  map[string]*config.Disk{"main": {Device: "/dev/disk/by-id/" + h}},
			Zpool: map[string]*config.Zpool{"tank " + h: {}},
		}
		for _, installer := range []bool{false, true} {
			r := &run{
				o:     &Options{MountPoint: h, Env: []string{"NIXOS_NO_CHECK=" + h}, NixOptions: [][2]string{{"k", h}}, RebootDelay: 3 * time.Second},
				facts: &facts.Facts{IsInstaller: installer},
			}
			mnt := path.Clean(h)
			got := assignments(t, r.installScript("/nix/store/abc-"+h))
			if got["mnt"] != mnt || got["system"] != "/nix/store/abc-"+h {
				t.Errorf("installScript(%q): mnt=%q system=%q", h, got["mnt"], got["system"])
			}
			got = assignments(t, r.rebootScript(&artifacts{layout: layout}))
			if got["mnt"] != mnt || got["disks"] != "/dev/disk/by-id/"+h || got["pools"] != "tank "+h {
				t.Errorf("rebootScript(%q): mnt=%q disks=%q pools=%q", h, got["mnt"], got["disks"], got["pools"])
			}
			got = assignments(t, kexecScript(h, h+"/installer.tar", h))
			if got["dir"] != h || got["f"] != h+"/installer.tar" || got["flags"] != h {
				t.Errorf("kexecScript(%q): dir=%q f=%q flags=%q", h, got["dir"], got["f"], got["flags"])
			}
			if !strings.Contains(r.installScript("/x"), "export NIXOS_NO_CHECK=") {
				t.Error("NIXOS_NO_CHECK is not passed on")
			}
		}
	}
}

func TestConfigAttr(t *testing.T) {
	for _, tc := range []struct{ flake, ref, attr, name string }{
		{".#host", ".", `nixosConfigurations."host".config`, "host"},
		{"github:o/r#my.host", "github:o/r", `nixosConfigurations."my.host".config`, "my.host"},
		{"path:/a#b#c", "path:/a#b", `nixosConfigurations."c".config`, "c"},
		{".#nixosConfigurations.x.config.virtualisation.vmVariant", ".", "nixosConfigurations.x.config.virtualisation.vmVariant", ""},
	} {
		ref, attr, name := configAttr(tc.flake)
		if ref != tc.ref || attr != tc.attr || name != tc.name {
			t.Errorf("configAttr(%q) = %q, %q, %q; want %q, %q, %q", tc.flake, ref, attr, name, tc.ref, tc.attr, tc.name)
		}
	}
}

func TestParsePhases(t *testing.T) {
	got, err := ParsePhases("reboot, install,disko,install")
	if err != nil || len(got) != 3 || got[0] != PhaseDisko || got[2] != PhaseReboot {
		t.Errorf("ParsePhases = %v, %v; want disko, install, reboot in order", got, err)
	}
	for _, bad := range []string{"", ",", "disko,boot"} {
		if _, err := ParsePhases(bad); err == nil {
			t.Errorf("ParsePhases(%q) = nil error", bad)
		}
	}
}

func TestOptionsCheck(t *testing.T) {
	ok := Options{Target: "root@h", Flake: ".#x", Phases: AllPhases}
	if err := ok.Check(); err != nil {
		t.Fatalf("Check() = %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"chown outside", func(o *Options) { o.Chown = []Chown{{"../etc", "0:0"}} }, "below the installed system's root"},
		{"chown owner", func(o *Options) { o.Chown = []Chown{{"/home", "1000:100; rm"}} }, "want OWNER or OWNER:GROUP"},
		{"relative key", func(o *Options) { o.DiskEncryptionKeys = []DiskKey{{"tmp/k", "/k"}} }, "must be absolute"},
		{"mount point /", func(o *Options) { o.MountPoint = "/" }, "--mount-point"},
		{"store paths and mode", func(o *Options) { o.Flake = ""; o.StorePaths = []string{"/a", "/b"}; o.DiskoMode = "mount" }, "--disko-mode cannot be used with --store-paths"},
		{"plan with other phases", func(o *Options) { o.DiskoMode = "plan" }, "--disko-mode plan changes nothing, so it runs alone: add --phases disko"},
		{"hardware kind", func(o *Options) { o.HardwareConfig = &HardwareConfig{"lshw", "x"} }, "nixos-facter or nixos-generate-config"},
		{"from with remote build", func(o *Options) { o.From = "https://c"; o.BuildOn = "remote" }, "--from cannot be used with --build-on remote"},
	} {
		o := ok
		tc.edit(&o)
		if err := o.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Check() = %v, want %q", tc.name, err, tc.want)
		}
	}
}
