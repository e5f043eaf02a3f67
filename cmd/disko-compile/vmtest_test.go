package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

// TestVMTestArguments: the command's mistakes are found before any VM boots.
func TestVMTestArguments(t *testing.T) {
	needNix(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"--disk-size without =", []string{"vm-test", "--disk-size", "main", corpus + "/simple-efi.nix"}, 2, `--disk-size needs NAME=SIZE, got "main"`},
		{"--disk-size naming no disk", []string{"vm-test", "--disk-size", "nope=1G", corpus + "/simple-efi.nix"}, 2, `the layout has no disk "nope" (disks: main)`},
		{"--disk-size not a size", []string{"vm-test", "--disk-size", "main=lots", corpus + "/simple-efi.nix"}, 2, `"lots" is not a size of at least 1M`},
		{"ZFS cannot run", []string{"vm-test", corpus + "/zfs.nix"}, 1, "ZFS and bcachefs are not in Debian's kernel"},
		{"--disk is not a flag of vm-test", []string{"vm-test", "--disk", "main=/dev/sda", corpus + "/simple-efi.nix"}, 2, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, want %d; stderr %q, want it to contain %q", code, tc.code, stderr, tc.stderr)
			}
		})
	}
}

// TestVMTest runs the command on the stacked layouts: LUKS with LVM on it, and an
// mdadm RAID1 over two disks with a GPT on the array. Each boots a guest (~15 s under
// TCG) and takes ~2-3 minutes.
func TestVMTest(t *testing.T) {
	needNix(t)
	if testing.Short() {
		t.Skip("boots VMs; skipped in -short mode")
	}
	ctx, cancel := testvm.ContextT(t)
	defer cancel()
	if _, err := testvm.Build(ctx, testvm.BuildOptions{}); errors.Is(err, testvm.ErrUnavailable) {
		t.Skipf("VM test skipped: %v", err)
	}
	t.Setenv("NIX_CONFIG", "substituters =\nexperimental-features = nix-command flakes")
	for _, tc := range []struct {
		layout string
		sizes  []string
		want   []string // step lines that must be in the output
	}{
		{"luks-lvm", []string{"main=768M"}, []string{"key files open the containers", "files survived format"}},
		{"mdadm", []string{"disk1=256M", "disk2=256M"}, []string{"destroy,format,mount --yes-wipe-all-disks", "blank"}},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			args := []string{"disko-compile", "vm-test"}
			for _, s := range tc.sizes {
				args = append(args, "--disk-size", s)
			}
			var stdout, stderr strings.Builder
			code := run(context.Background(), append(args, corpus+"/"+tc.layout+".nix"), strings.NewReader(""), &stdout, &stderr)
			t.Logf("stdout:\n%s", stdout.String())
			if code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
			}
			for _, want := range append(tc.want, "vm-test: "+tc.layout+" passed in") {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q", want)
				}
			}
			if !strings.Contains(stderr.String(), "testvm: guest up in") {
				t.Errorf("stderr does not say how the guest came up (accelerator):\n%s", stderr.String())
			}
		})
	}
}
