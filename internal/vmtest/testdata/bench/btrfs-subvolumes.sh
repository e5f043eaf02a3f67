# The bare commands of btrfs-subvolumes: the table, mkfs, then the subvolumes and swap
# files through one mount of the top level.
sfdisk -q /dev/vda <<TABLE
label: gpt
start=2048, size=260096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=disk-main-ESP
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=disk-main-root
TABLE
mkfs.vfat /dev/vda1 >/dev/null
mkfs.btrfs -f /dev/vda2 >/dev/null
top=$(mktemp -d)
mount -t btrfs -o subvol=/ /dev/vda2 "$top"
btrfs filesystem mkswapfile --size 20M "$top"/swapfile >/dev/null
btrfs filesystem mkswapfile --size 20M "$top"/swapfile1 >/dev/null
for sv in home home/user nix rootfs swap test; do
	btrfs subvolume create "$top/$sv" >/dev/null
done
btrfs filesystem mkswapfile --size 20M "$top"/swap/rel-path >/dev/null
btrfs filesystem mkswapfile --size 20M "$top"/swap/swapfile >/dev/null
umount "$top"
rmdir "$top"
udevadm settle
