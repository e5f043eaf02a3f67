package plan

import "strings"

// The kernel lists a mount's options in its own words: some under another name, some
// with a value added, some (those that only tell mount or systemd what to do) not at all.
// missingOptions reads them the way the VM harness checks mounts (internal/vmcycle), so
// that a layout mounted as it says plans no remount.

// optionAliases are mount options that the kernel shows under another name, by
// filesystem type.
var optionAliases = map[string]map[string]string{
	"xfs": {
		"uquota": "usrquota", "quota": "usrquota",
		"qnoenforce": "uqnoenforce",
		"gquota":     "grpquota",
		"pquota":     "prjquota",
	},
}

// missingOptions are the layout's options want that the kernel's list got of a mounted
// filesystem of type fsType does not show.
func missingOptions(fsType string, want, got []string) []string {
	has := func(o string) bool {
		for _, g := range got {
			if g == o || strings.HasPrefix(g, o+":") { // compress=zstd shows as compress=zstd:3
				return true
			}
		}
		return false
	}
	var missing []string
	for _, w := range want {
		for _, o := range strings.Split(w, ",") {
			shown := o
			if a, ok := optionAliases[fsType][o]; ok {
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
