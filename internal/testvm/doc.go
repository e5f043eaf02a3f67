// Package testvm boots throw-away qemu guests for tests that need what this
// machine's kernel lacks: device-mapper (LUKS, LVM), md RAID, vfat mounts,
// udev's /dev/disk links and kexec.
//
// The guest is Debian's own kernel with an initramfs assembled from the
// packages installed on the host (see Build), cached by their versions, so
// the tools in the guest are the same ones the disk scripts target. Tests
// talk to the guest over one pinned-host-key SSH connection (see VM).
package testvm
