package testvm

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSystemBuild builds the stand-in system from a LUKS-on-LVM layout's
// NixOS configuration and checks the toplevel's shape and closure.
func TestSystemBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with nix; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("nix-build into /nix/store needs root here")
	}
	ctx, cancel := ContextT(t)
	defer cancel()
	cfg := `{"boot":{"initrd":{"kernelModules":["dm-snapshot"],"luks":{"devices":{"crypted":{"allowDiscards":true,
"device":"/dev/disk/by-partlabel/disk-main-luks","keyFile":"/tmp/secret.key"}}}}},
"fileSystems":{"/":{"device":"/dev/pool/root","fsType":"ext4","options":["defaults"]},
"/boot":{"device":"/dev/disk/by-partlabel/disk-main-ESP","fsType":"vfat","options":["umask=0077"]}},"swapDevices":[]}`
	sys, err := BuildSystem(ctx, SystemOptions{
		NixOSConfig:    []byte(cfg),
		AuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemo test"},
		InitrdSecrets:  map[string]string{"/tmp/secret.key": "/etc/secrets/initrd/secret.key"},
		DiskoScript:    []byte("#!/usr/bin/env bash\necho formatting \"$@\"\n"),
		Log:            &testLog{t: t},
	})
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"init", "bin/switch-to-configuration", "kernel", "initrd", "system", "etc/fstab", "sw/usr/sbin/sshd"} {
		if _, err := os.Stat(sys.Toplevel + "/" + f); err != nil {
			t.Errorf("toplevel: %v", err)
		}
	}
	out, err := exec.Command("nix-store", "-qR", sys.Toplevel).Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("closure:\n%s", out)
	if n := len(strings.Fields(string(out))); n != 3 {
		t.Errorf("closure has %d paths, want 3 (toplevel, its userland, its boot files)", n)
	}
	disko, err := os.ReadFile(sys.DiskoScript)
	if err != nil || !strings.Contains(string(disko), "--yes-wipe-all-disks") {
		t.Errorf("disko script %s: %q, %v", sys.DiskoScript, disko, err)
	}
	if out, err := exec.Command(sys.DiskoScript, "x").Output(); err != nil || string(out) != "formatting --yes-wipe-all-disks x\n" {
		t.Errorf("running the disko script: %q, %v", out, err)
	}
	fstab, _ := os.ReadFile(sys.Toplevel + "/etc/fstab")
	if string(fstab) != "/dev/disk/by-partlabel/disk-main-ESP /boot vfat umask=0077 0 0\n" {
		t.Errorf("fstab: %q", fstab)
	}
}
