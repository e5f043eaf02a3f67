# The bare commands of mdadm: two tables, the RAID1, a table on it and mkfs.
for d in /dev/vda /dev/vdb; do
	sfdisk -q "$d" <<TABLE
label: gpt
size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name=disk-${d#/dev/}-boot
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=disk-${d#/dev/}-mdadm
TABLE
done
mdadm --create /dev/md/raid1 --level=1 --raid-devices=2 --force --homehost=any /dev/vda2 /dev/vdb2 >/dev/null 2>&1 <<<y
sfdisk -q /dev/md/raid1 <<TABLE
label: gpt
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=mdadm-raid1-primary
TABLE
udevadm settle
mkfs.ext4 -q /dev/md/raid1p1
udevadm settle
