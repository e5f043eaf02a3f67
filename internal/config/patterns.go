package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/diskoanywhere/diskoanywhere/internal/lazyregexp"
)

// The formats of size and position options, each the one rule for its options: the
// validator checks it, and the JSON Schema carries it as the option's `pattern` (named by
// the option's `pattern` struct tag), so that an editor flags "500X" as the validator does.
// They are written in the common subset of Go's and JSON Schema's (ECMA 262) regular
// expressions: no flags, so case-insensitive units spell out both cases.
var patterns = map[string]*lazyregexp.Regexp{
	// disk.imageSize: what disko passes to qemu-img.
	"imageSize": lazyregexp.WithMatcher(`^[0-9]+[KMGTP]?$`, isImageSize),
	// A GPT partition size, as disko turns it into sgdisk's +SIZE (or -0 for 100%).
	"gptSize": lazyregexp.WithMatcher(`^(100%|[0-9]+[KMGTP]?)$`, isGPTSize),
	// What sgdisk reads: whole numbers, a unit letter with an optional B or iB, or sectors
	// (decimals are refused: sgdisk silently reads +1.5G as one sector).
	"gptPosition": lazyregexp.WithMatcher(`^[+-]?[0-9]+([KMGTPkmgtp]([iI]?[bB])?|[sS])?$`, isGPTPosition),
	// What parted reads: a number with a unit (B, s, kB..TB, KiB..TiB, %, cyl, chs).
	"partedPosition": lazyregexp.New(`^-?[0-9]+(\.[0-9]+)?(%|[sSbB]|[kmgtKMGT]([iI]?[bB])?|[cC][yY][lL]|[cC][hH][sS])?$`),
	// What lvcreate reads: -L sizes (the first unit letter counts) and -l percentages with
	// lvm's abbreviations of VG, LV, PVS, FREE and ORIGIN.
	"lvSize": lazyregexp.WithMatcher(`^[0-9]+(\.[0-9]+)?([bskmgtpeBSKMGTPE][a-zA-Z]*|%([vV][gG]?|[lL][vV]?|[pP]([vV][sS]?)?|[fF]([rR]([eE][eE]?)?)?|[oO]([rR]([iI]([gG]([iI][nN]?)?)?)?)?)?)?$`, isLVSize),
	// What zfs create -V reads: a number with an optional unit and B or iB.
	"zvolSize": lazyregexp.New(`^[0-9]+(\.[0-9]+)?([bkmgtpezBKMGTPEZ]([iI]?[bB])?)?$`),
	// A btrfs swap file size (btrfs filesystem mkswapfile --size).
	"swapfileSize": lazyregexp.WithMatcher(`^[0-9]+[KMGTP]$`, isSwapfileSize),
}

// Pattern returns the regular expression a string option must match, from its `pattern`
// struct tag, or "" when the option has none.
func Pattern(f reflect.StructField) string {
	if re := patterns[f.Tag.Get("pattern")]; re != nil {
		return re.String()
	}
	return ""
}

// Position is the start or end of a GPT partition as sgdisk reads it.
type Position struct {
	// Sign is "+" (relative to the start), "-" (back from the end of the disk) or ""
	// (from the start of the disk).
	Sign string
	// Value is the number as written; 0 stands for sgdisk's default.
	Value uint64
	// Unit is the number of bytes of one unit of Value; 0 means sectors.
	Unit uint64
}

// maxPositionBytes bounds positions well below what sector arithmetic in 64 bits (sgdisk's
// and the format script's) can hold: 4 EiB, beyond any disk.
const maxPositionBytes = 1 << 62

// ParsePosition reads an sgdisk position (patterns["gptPosition"]) as the validator
// checks it; config.Load hands positions on in canonical spelling (canonicalPosition).
func ParsePosition(s string) (Position, error) {
	if !patterns["gptPosition"].MatchString(s) {
		return Position{}, fmt.Errorf("%q is not a position sgdisk understands (examples: 0, 1M, +500M, -10M, 2048s)", s)
	}
	var p Position
	digits := s
	if digits[0] == '+' || digits[0] == '-' {
		p.Sign, digits = digits[:1], digits[1:]
	}
	end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
	unit := ""
	if end >= 0 {
		digits, unit = digits[:end], strings.ToUpper(digits[end:end+1])
	}
	v, err := strconv.ParseUint(digits, 10, 62)
	if err != nil {
		return Position{}, fmt.Errorf("%q is too large (at most 4 EiB)", s)
	}
	p.Value = v
	p.Unit = map[string]uint64{"": 0, "S": 0, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}[unit]
	if p.Unit > 0 && v > maxPositionBytes/p.Unit {
		return Position{}, fmt.Errorf("%q is too large (at most 4 EiB)", s)
	}
	return p, nil
}

// canonicalPosition spells a position the one way the later stages read it: the unit as
// one upper-case letter (1MiB, 1mb and 1m are 1M), sectors as s. A position that does not
// parse is left for the validator to report.
func canonicalPosition(s string) string {
	if _, err := ParsePosition(s); err != nil {
		return s
	}
	end := strings.LastIndexFunc(s, func(r rune) bool { return r >= '0' && r <= '9' }) + 1
	switch unit := strings.ToUpper(s[end:]); {
	case unit == "":
		return s
	case unit == "S":
		return s[:end] + "s"
	default:
		return s[:end] + unit[:1]
	}
}
