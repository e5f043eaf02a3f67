package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHardwareCommand runs the command that makes the hardware report with
// /bin/sh and stand-ins for the tools that record their arguments, one
// [arg] each: nixos-generate-config as nixos-anywhere calls it, nixos-facter
// when the target has it, else nixos-facter from nixpkgs through nix shell
// (with the run's --option pairs, hostile values included).
func TestHardwareCommand(t *testing.T) {
	opts := (&run{o: &Options{NixOptions: [][2]string{{"substituters", hostile[0]}, {"k", hostile[1]}}}}).nixOptionArgs()
	for _, tc := range []struct {
		name, kind string
		tools      []string // stand-ins on PATH
		want       string   // the calls recorded
	}{
		{"generate-config", "nixos-generate-config", []string{"nixos-generate-config", "nix"},
			"nixos-generate-config [--show-hardware-config][--no-filesystems]"},
		{"facter", "nixos-facter", []string{"nixos-facter", "nix"}, "nixos-facter []"}, // no arguments
		{"facter from nixpkgs", "nixos-facter", []string{"nix"},
			"nix [--extra-experimental-features][nix-command flakes][--option][substituters][" + hostile[0] + "][--option][k][" + hostile[1] + "]" +
				"[shell][nixpkgs#nixos-facter][-c][nixos-facter]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			record := filepath.Join(bin, "calls")
			for _, tool := range tc.tools {
				script := "#!/bin/sh\n{ printf '%s ' \"${0##*/}\"; printf '[%s]' \"$@\"; echo; } >> " + record + "\necho '{\"version\": 1}'\n"
				if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("/bin/sh", "-c", hardwareCommand(tc.kind, opts))
			cmd.Env = []string{"PATH=" + bin}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if err := checkHardwareReport(tc.kind, out); err != nil {
				t.Errorf("report %q: %v", out, err)
			}
			calls, _ := os.ReadFile(record)
			if got := strings.TrimSpace(string(calls)); got != strings.TrimSpace(tc.want) {
				t.Errorf("calls:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestCheckHardwareReport: what is not a report never replaces the file
// the configuration imports.
func TestCheckHardwareReport(t *testing.T) {
	for _, tc := range []struct{ kind, out, err string }{
		{"nixos-generate-config", "{ boot.initrd.availableKernelModules = [ ]; }\n", ""},
		{"nixos-generate-config", " \n", "nixos-generate-config printed nothing"},
		{"nixos-facter", `{"version": 1, "hardware": {}}`, ""},
		{"nixos-facter", "", "nixos-facter printed nothing"},
		// nixos-anywhere#665: Nix's progress in front of the JSON.
		{"nixos-facter", "copying path '/nix/store/abc-nixos-facter' from 'https://cache.nixos.org'...\n{\"version\": 1}", `not JSON (begins "copying path '/nix/store/abc-nixos-facter'`},
		{"nixos-facter", `{"version": 1`, "not JSON"},
	} {
		err := checkHardwareReport(tc.kind, []byte(tc.out))
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("checkHardwareReport(%s, %q) = %v, want %q", tc.kind, tc.out, err, tc.err)
		}
	}
}
