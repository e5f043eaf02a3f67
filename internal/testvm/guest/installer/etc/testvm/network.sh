#!/bin/bash
# Restores the network configuration of the replaced system from the
# `ip -json` dumps kexec/run carried over (/iproute2), as nixos-images'
# restore_routes does (it writes networkd units; this applies them with ip):
# interfaces are matched by MAC address, not name; static addresses and the
# routes not made by the kernel, DHCP or router advertisements come back.
# An interface left without an address tries DHCP.
set -u
d=/iproute2
if [ -s $d/addrs.json ]; then
	while read -r old mac; do
		new=""
		for n in /sys/class/net/*; do
			if [ "$(cat "$n/address" 2>/dev/null)" = "$mac" ]; then new=${n##*/}; fi
		done
		if [ -z "$new" ]; then
			echo "installer: no interface with MAC $mac (was $old)" >/dev/console
			continue
		fi
		ip link set "$new" up
		jq -r --arg i "$old" '.[] | select(.ifname == $i) | .addr_info[]?
			| select(.scope != "link" and .scope != "host" and (.dynamic | not))
			| "\(.local)/\(.prefixlen)"' $d/addrs.json |
			while read -r a; do ip addr add "$a" dev "$new"; done
		for f in $d/routes-v4.json $d/routes-v6.json; do
			[ -s "$f" ] || continue
			jq -r --arg i "$old" '.[] | select(.dev == $i)
				| select([.protocol] | inside(["kernel", "dhcp", "ra"]) | not)
				| [.dst, (.gateway // "-"), (if (.flags // []) | index("onlink") then "onlink" else "-" end)] | @tsv' "$f" |
				while IFS=$'\t' read -r dst gw onlink; do
					args=("$dst")
					[ "$gw" != - ] && args+=(via "$gw")
					args+=(dev "$new")
					[ "$onlink" != - ] && args+=(onlink)
					ip route add "${args[@]}" || echo "installer: ip route add ${args[*]} failed" >/dev/console
				done
		done
	done < <(jq -r '.[] | select(.link_type != "loopback" and .address != null) | "\(.ifname) \(.address)"' $d/addrs.json)
fi
for n in /sys/class/net/*; do
	n=${n##*/}
	[ "$n" = lo ] && continue
	ip link set "$n" up
	if [ -z "$(ip -4 addr show dev "$n" scope global)" ]; then
		udhcpc -i "$n" -q -n -t 5 -s /etc/testvm/udhcpc.sh >/dev/null 2>&1 || echo "installer: no address for $n" >/dev/console
	fi
done
