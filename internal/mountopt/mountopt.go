// Package mountopt compares the mount options a layout asks for with the ones the kernel
// lists for a mounted filesystem. The kernel shows options in its own words (some under
// another name, some with a value added, some not at all), so a literal comparison calls a
// correct mount wrong. The plan (does a mount need a remount?) and the VM harness (is the
// mount what the layout says?) must read them the same way: both use Missing.
package mountopt

import "strings"

// aliases are mount options that the kernel shows under another name, by filesystem type:
// xfs takes uquota, quota and usrquota and shows usrquota, and so on.
var aliases = map[string]map[string]string{
	"xfs": {
		"uquota": "usrquota", "quota": "usrquota",
		"qnoenforce": "uqnoenforce",
		"gquota":     "grpquota",
		"pquota":     "prjquota",
	},
}

// Missing returns the options of want (each entry may hold several, comma-separated) that
// the kernel's list got for a filesystem of type fsType does not show. Options the kernel
// never lists are skipped; umask= counts as shown when fmask= and dmask= carry its value,
// and an option counts as shown when the kernel adds a level to it (compress=zstd shows as
// compress=zstd:3).
func Missing(fsType string, want, got []string) []string {
	has := func(o string) bool {
		for _, g := range got {
			if g == o || strings.HasPrefix(g, o+":") {
				return true
			}
		}
		return false
	}
	var missing []string
	for _, w := range want {
		for _, o := range strings.Split(w, ",") {
			shown := o
			if a, ok := aliases[fsType][o]; ok {
				shown = a
			}
			switch {
			case notListed(o):
			case strings.HasPrefix(o, "umask="): // vfat: the file and directory masks
				m := strings.TrimPrefix(o, "umask=")
				if !has("fmask="+m) || !has("dmask="+m) {
					missing = append(missing, o)
				}
			default:
				if !has(shown) {
					missing = append(missing, o)
				}
			}
		}
	}
	return missing
}

// notListed reports whether the kernel never lists an option: the defaults, and options
// for mount, fstab and systemd (subvol= is compared as the mounted directory).
func notListed(o string) bool {
	switch o {
	case "", "defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users", "owner", "group",
		"exec", "dev", "suid", "async":
		return true
	}
	for _, prefix := range []string{"X-", "x-", "subvol=", "subvolid=", "comment="} {
		if strings.HasPrefix(o, prefix) {
			return true
		}
	}
	return false
}
