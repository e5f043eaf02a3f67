#!/bin/sh
# Installs what kexec/run carried over from the replaced system in the
# archive it appended to the initrd (unpacked at /): root's authorized keys
# (/ssh/authorized_keys), the host keys (/ssh/ssh_host_*) and the machine
# id, as nixos-images' restore-remote-access does. Without a host key the
# installer makes its own, so it can still be reached (with another key).
set -u
if [ -s /ssh/authorized_keys ]; then
	install -D -m 400 /ssh/authorized_keys /root/.ssh/authorized_keys
fi
for f in /ssh/ssh_host_*; do
	[ -e "$f" ] || continue
	install -m 400 "$f" /etc/ssh/
done
if [ -s /machine-id ]; then
	cp /machine-id /etc/machine-id
fi
if ! ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1; then
	echo "installer: no host key was carried over; generating one" >/dev/console
	ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
fi
