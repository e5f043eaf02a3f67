// Package vmtest runs the compiled disk scripts of every layout of disko's
// example corpus inside qemu guests (internal/testvm), because this machine's
// kernel has no device-mapper, md, vfat or GPT parser: LUKS, LVM, mdadm RAID
// and EFI partitions can only be proven on a real kernel.
//
// Each layout gets one guest whose virtio disks stand in for the layout's
// disks (sorted by name: /dev/vda, /dev/vdb, ...) and goes through disko's
// own test cycle, as internal/vmcycle runs it (the same code as
// `disko-compile vm-test`): format, mount, mount again, write a file,
// unmount, unmount again, mount, format again (the file survives),
// destroy,format,mount, unmount and destroy (the disks are blank), with the
// guest's state checked after each step. This package picks the disk sizes
// and shares guests between layouts.
//
// ZFS and bcachefs layouts are not run: Debian's kernel has neither.
//
// The package has only tests; run them with
//
//	go test ./internal/vmtest -v
//
// DISKOANYWHERE_VMTEST_PARALLEL sets how many guests run at once (default 2)
// (go test -run TestLayouts/layout/NAME runs one layout).
package vmtest
