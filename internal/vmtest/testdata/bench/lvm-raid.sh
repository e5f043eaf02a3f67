# The bare commands of lvm-raid: two tables, a RAID1 for /boot, a volume group over both
# disks with a mirror and a raid0 volume.
for d in /dev/vda /dev/vdb; do
	sfdisk -q "$d" <<TABLE
label: gpt
size=500MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=disk-${d#/dev/}-boot
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=disk-${d#/dev/}-primary
TABLE
done
mdadm --create /dev/md/boot --level=1 --raid-devices=2 --metadata=1.0 --force --homehost=any /dev/vda1 /dev/vdb1 >/dev/null 2>&1 <<<y
mkfs.vfat /dev/md/boot >/dev/null
pvcreate -q /dev/vda2 /dev/vdb2
vgcreate -q pool /dev/vda2 /dev/vdb2
lvcreate -q --yes -L 10M -n home --type=raid0 pool
lvcreate -q --yes -L 100M -n root --type=mirror pool
mkfs.ext4 -q /dev/pool/home
mkfs.ext4 -q /dev/pool/root
udevadm settle
