package codegen

import (
	"sort"
	"strings"
)

// PartitionTypeGUID is the GPT type GUID (upper case) that the format script writes for a
// partition type option (an sgdisk code or a GUID), and false for anything else. The
// incremental planner compares the types it finds on a disk through it.
func PartitionTypeGUID(t string) (string, bool) { return typeGUID(t) }

// PartitionTypeCode is the sgdisk code of a type GUID (the lowest, when several codes name
// the same GUID), or "" when sgdisk has none; import writes types as codes with it.
func PartitionTypeCode(guid string) string {
	var codes []string
	for code, g := range sgdiskTypes {
		if strings.EqualFold(g, guid) {
			codes = append(codes, code)
		}
	}
	if len(codes) == 0 {
		return ""
	}
	sort.Strings(codes)
	return codes[0]
}
