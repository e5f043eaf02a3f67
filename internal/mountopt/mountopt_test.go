package mountopt

import (
	"slices"
	"strings"
	"testing"
)

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		fsType  string
		want    []string
		got     string
		missing []string
	}{
		{"xfs", []string{"pquota", "uquota"}, "rw,relatime,attr2,inode64,usrquota,prjquota", nil},
		{"xfs", []string{"gquota,quota"}, "rw,relatime,usrquota,grpquota", nil},
		{"xfs", []string{"pquota"}, "rw,relatime,usrquota", []string{"pquota"}},
		{"ext4", []string{"pquota"}, "rw,relatime,prjquota", []string{"pquota"}}, // the aliases are xfs's
		{"vfat", []string{"umask=0077"}, "rw,relatime,fmask=0077,dmask=0077,codepage=437", nil},
		{"vfat", []string{"umask=0077"}, "rw,relatime,fmask=0022,dmask=0077", []string{"umask=0077"}},
		{"btrfs", []string{"compress=zstd", "noatime", "subvol=/nix"}, "rw,noatime,compress=zstd:3,subvol=/nix", nil},
		{"ext4", []string{"defaults,nofail,x-systemd.automount", "X-mount.mkdir", "noatime"}, "rw,relatime", []string{"noatime"}},
	} {
		if got := Missing(tc.fsType, tc.want, strings.Split(tc.got, ",")); !slices.Equal(got, tc.missing) {
			t.Errorf("Missing(%s, %q, %q) = %q, want %q", tc.fsType, tc.want, tc.got, got, tc.missing)
		}
	}
}
