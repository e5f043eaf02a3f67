# shellcheck shell=sh disable=SC2154
# (out, sw, boot and tmpl come from the derivation's environment)
# Builder of the stand-in system's toplevel, run by the system's own static
# busybox (sandbox off or on: it only reads its inputs).
export PATH="$sw/usr/bin"
mkdir -p "$out/bin"
subst() { sed -e "s|@out@|$out|g" -e "s|@sw@|$sw|g" -e "s|@boot@|$boot|g" "$1" >"$2"; }
subst "$tmpl/init" "$out/init"
subst "$tmpl/switch-to-configuration" "$out/bin/switch-to-configuration"
chmod 555 "$out/init" "$out/bin/switch-to-configuration"
cp -r "$tmpl/etc" "$out/etc"
chmod -R u+w "$out/etc"
for f in inittab ssh/sshd_config; do
	subst "$tmpl/etc/$f" "$out/etc/$f"
done
cp "$tmpl/kernel-params" "$tmpl/initrd-secrets" "$out/"
ln -s "$sw" "$out/sw"
ln -s "$boot/kernel" "$out/kernel"
ln -s "$boot/initrd" "$out/initrd"
echo x86_64-linux >"$out/system"
echo "25.11-stand-in" >"$out/nixos-version"
