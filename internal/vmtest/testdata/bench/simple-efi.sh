# The bare commands of simple-efi: one partition table, two mkfs.
sfdisk -q /dev/vda <<TABLE
label: gpt
size=500MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=disk-main-ESP
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=disk-main-root
TABLE
mkfs.vfat /dev/vda1 >/dev/null
mkfs.ext4 -q /dev/vda2
udevadm settle
