package config

import (
	"fmt"
	"strconv"
)

// BinaryBytes reads a size the way disko's imageSize, swap file sizes and the tools behind
// them (truncate -s, lvcreate -L, btrfs) read it: a whole number with an optional K, M, G,
// T or P suffix in either case, each a power of 1024. The image builder, the VM harness
// and testvm share it so that "10M" means the same number of bytes everywhere.
func BinaryBytes(s string) (int64, error) {
	num, unit := s, int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] &^ 0x20 {
		case 'K':
			num, unit = s[:n-1], 1<<10
		case 'M':
			num, unit = s[:n-1], 1<<20
		case 'G':
			num, unit = s[:n-1], 1<<30
		case 'T':
			num, unit = s[:n-1], 1<<40
		case 'P':
			num, unit = s[:n-1], 1<<50
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || num[0] < '0' || num[0] > '9' || v > (1<<62)/unit {
		return 0, fmt.Errorf("%q is not a size (examples: 2G, 512M)", s)
	}
	return v * unit, nil
}
