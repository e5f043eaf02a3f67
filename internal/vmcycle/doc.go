// Package vmcycle runs disko's test cycle for a layout in a qemu guest
// (internal/testvm): format, mount, mount again, write a file, unmount,
// unmount again, mount, format again (the file survives),
// destroy,format,mount, unmount and destroy (the disks are blank). After each
// step the guest's state is read from the tools' JSON or stable output
// (findmnt, lsblk, cryptsetup, lvs, mdadm, /proc/swaps, wipefs) and compared
// with what the layout and its NixOS configuration (internal/codegen/nixos)
// say.
//
// It is the one implementation behind `disko-compile vm-test` and the corpus
// tests of internal/vmtest: the guest is real (Debian's kernel, with
// device-mapper, md, vfat and GPT), so LUKS, LVM, mdadm RAID and EFI
// partitions are proven, which this machine's own kernel cannot do.
package vmcycle
