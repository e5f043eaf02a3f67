# The bare commands of luks-lvm: the table, a LUKS container with a second key, a volume
# group in it and its volumes. Each key is derived as often as cryptsetup needs: at
# luksFormat, at open, and at luksAddKey (the existing key, then the new one).
sfdisk -q /dev/vda <<TABLE
label: gpt
size=500MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=disk-main-ESP
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=disk-main-luks
TABLE
mkfs.vfat /dev/vda1 >/dev/null
cryptsetup -q luksFormat /dev/vda2 --key-file /tmp/secret.key
cryptsetup open /dev/vda2 crypted --allow-discards --key-file /tmp/secret.key --persistent
cryptsetup luksAddKey /dev/vda2 /tmp/additionalSecret.key --key-file /tmp/secret.key
pvcreate -q /dev/mapper/crypted
vgcreate -q pool /dev/mapper/crypted
lvcreate -q --yes -L 10M -n home pool
lvcreate -q --yes -L 10M -n raw pool
lvcreate -q --yes -l 100%FREE -n root pool
mkfs.ext4 -q /dev/pool/home
mkfs.ext4 -q /dev/pool/root
udevadm settle
