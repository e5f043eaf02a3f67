// Package e2e proves `anywhere` end to end in the VM rig: a guest that
// boots "another Linux" (internal/testvm's guest: Debian userland, sshd,
// virtio disks) is taken through kexec into the test installer
// (testvm.BuildInstaller, the nixos-images tarball layout), disko (an ESP
// plus LUKS and LVM), install and reboot into a stand-in NixOS system that
// boots with UEFI (OVMF + systemd-boot), and is then checked from outside.
//
// The tests run the built `anywhere` binary with its normal output, so
// what they prove is what a user runs. They need root, qemu, Debian's
// kernel, ovmf, systemd-boot-efi and nix-bin (.ci/packages); without them
// they skip and say why.
package e2e
