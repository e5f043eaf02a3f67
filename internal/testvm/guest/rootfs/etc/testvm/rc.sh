#!/bin/bash
# Boot script of the test guest (run by busybox init as "sysinit", before
# sshd). Kernel arguments it understands:
#   testvm.udev=0            do not start systemd-udevd (lvm.conf adapts)
#   testvm.share=TAG:PATH    mount the 9p share TAG read-only at PATH
#   testvm.modules=a,b       modprobe these modules at boot (others load on demand)
export PATH=/usr/sbin:/usr/bin
say() { local up; read -r up _ </proc/uptime; echo "testvm: $* (uptime ${up}s)" >/dev/console; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
ln -s /proc/self/fd /dev/fd
ln -s fd/0 /dev/stdin
ln -s fd/1 /dev/stdout
ln -s fd/2 /dev/stderr
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/lock /run/sshd /var/log /var/tmp /tmp /mnt /etc/lvm
chmod 1777 /tmp /var/tmp
say "init"

udev=1 shares=() modules=()
for w in $(</proc/cmdline); do
	case $w in
	testvm.udev=0) udev=0 ;;
	testvm.share=*) shares+=("${w#testvm.share=}") ;;
	testvm.modules=*) IFS=, read -ra m <<<"${w#testvm.modules=}"; modules+=("${m[@]}") ;;
	esac
done

# Only the virtio drivers are loaded at boot (each module costs time under
# TCG). The kernel loads the rest on first use through /sbin/modprobe:
# filesystems on mount, dm targets, md personalities, crypto algorithms, and
# md_mod when /dev/mdN is opened. Nodes such as /dev/mapper/control load
# their module when opened, once made as systemd-tmpfiles would.
modprobe -a virtio_pci virtio_blk virtio_net virtio_rng "${modules[@]}"
kmod static-nodes --format=tmpfiles | while read -r type node mode _ _ _ dev; do
	case $type in
	[cb]*)
		mkdir -p "${node%/*}"
		[ -e "$node" ] || mknod -m "$mode" "$node" "${type:0:1}" "${dev%%:*}" "${dev##*:}"
		;;
	esac
done
say "modules loaded"

hostname -F /etc/hostname
ip link set lo up
# An image may bring its own network setup (the kexec installer restores the
# configuration of the system it replaced); the test guest uses qemu's
# user-mode network statically.
if [ -x /etc/testvm/network.sh ]; then
	/etc/testvm/network.sh || say "network setup failed"
else
	for n in /sys/class/net/*; do
		n=${n##*/}
		[ "$n" = lo ] && continue
		ip link set "$n" up
		ip addr add 10.0.2.15/24 dev "$n"
		ip route add default via 10.0.2.2
		break
	done
fi

# lvm must wait for udev when udev runs, and create /dev nodes itself when not.
if [ "$udev" = 1 ]; then
	sync_udev=1
else
	sync_udev=0
fi
cat >/etc/lvm/lvm.conf <<LVM
global { use_lvmpolld = 0 }
devices { obtain_device_list_from_udev = $sync_udev }
activation {
	udev_sync = $sync_udev
	udev_rules = $sync_udev
	monitoring = 0
}
LVM

if [ "$udev" = 1 ]; then
	/lib/systemd/systemd-udevd --daemon --resolve-names=never
	# Only block devices: /dev/disk/* links are what tests need, and a full
	# coldplug costs several seconds under TCG.
	udevadm trigger --action=add --subsystem-match=block
	udevadm settle --timeout=30
	say "udev ready"
fi

for s in "${shares[@]}"; do
	mkdir -p "${s#*:}"
	mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000 "${s%%:*}" "${s#*:}" ||
		say "cannot mount share $s"
done

# An image may prepare sshd's keys itself (the installer installs the host
# and authorized keys carried over a kexec).
if [ -x /etc/testvm/pre-sshd.sh ]; then
	/etc/testvm/pre-sshd.sh || say "sshd preparation failed"
fi

say "starting sshd"
