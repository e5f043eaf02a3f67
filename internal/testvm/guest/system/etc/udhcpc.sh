#!/bin/sh
# udhcpc's event script: apply a lease (udhcpc sets ip, mask, router,
# interface in the environment).
# shellcheck disable=SC2154
case $1 in
bound | renew)
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "${router:-}" ] && ip route add default via "${router%% *}" dev "$interface"
	;;
esac
exit 0
