// Package testvm boots throw-away qemu guests for tests that need what this
// machine's kernel lacks: device-mapper (LUKS, LVM), md RAID, vfat mounts,
// udev's /dev/disk links and kexec.
//
// The guest is Debian's own kernel with an initramfs assembled from the
// packages installed on the host (see Build and guestPackages), so the
// tools in the guest are the very ones disk scripts are written against:
// GNU bash as /bin/sh, util-linux, sgdisk/sfdisk, cryptsetup, lvm2, mdadm,
// mkfs.{ext4,xfs,btrfs,vfat}, kexec, jq. Busybox only fills gaps (init, ip,
// poweroff). systemd-udevd runs, so /dev/disk/by-partlabel, by-id
// (virtio-<serial>) and by-label exist. The image is cached, keyed by the
// rig's source and the versions of all installed packages; a cache hit costs
// ~0.1-0.3 s, a build 5-30 s (kexec-tools is downloaded when not installed).
//
// Under TCG (this machine has no usable KVM) a guest answers SSH about 11 s
// after qemu starts. Commands share one SSH connection with a pinned host
// key and cost ~50-80 ms each, ten times less than an ssh process each.
// Boots are the expensive part: reuse one guest for many checks.
//
// Typical use:
//
//	func TestLayout(t *testing.T) {
//		vm := testvm.StartT(t, testvm.Options{
//			Disks: []testvm.DiskSpec{{Size: 2 * testvm.GiB}, {Size: 2 * testvm.GiB}},
//		})
//		ctx, cancel := testvm.ContextT(t)
//		defer cancel()
//		if _, _, err := vm.RunScript(ctx, formatScript); err != nil {
//			t.Fatal(err) // a *CommandError, with the exit status and stderr
//		}
//		out, _, err := vm.Run(ctx, "lsblk --json -o NAME,PARTLABEL,FSTYPE,MOUNTPOINTS")
//		...
//	}
//
// For an installer test: Options.ExtraPackages ("nix-bin") puts more host
// packages into the guest, Options.Shares and read-only DiskSpecs carry
// bigger things in, VM.SSHArgs and VM.ClientKeyPath let OpenSSH-based tools
// (nix copy, the installer under test) log in with the host key checked,
// and VM.Reconnect waits for the guest to come back after a kexec (the image
// serves the same host key on every boot; VM.Image has its kernel and
// initrd to kexec into).
//
// Run `go run ./cmd/testvm shell --disks 1G,1G` to get a shell in a guest.
package testvm
