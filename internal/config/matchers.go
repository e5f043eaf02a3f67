package config

import "strings"

// Hand-written matchers that stand in for the expressions every layout is checked
// against (lazyregexp.WithMatcher): compiling those expressions in each disko-compile
// run cost more than all the checking. The expressions stay the definition;
// TestMatchersAgree holds each matcher to its expression.

// isFormatName matches `^[A-Za-z0-9][A-Za-z0-9._+-]*$`: what may follow "mkfs.".
func isFormatName(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '+' && c != '-' {
			return false
		}
	}
	return true
}

// IsFormatName reports whether format may follow "mkfs." in a tool name (letters, digits
// and . _ + - after a letter or digit), as the validator checks filesystem.format.
func IsFormatName(format string) bool { return fsFormat.MatchString(format) }

// IsGUID reports whether s is a GUID (8-4-4-4-12 hexadecimal digits), as the validator
// checks partition types and UUIDs.
func IsGUID(s string) bool { return guid.MatchString(s) }

// isTypeCode matches `^[0-9A-Fa-f]{4}$`: an sgdisk type code.
func isTypeCode(s string) bool { return len(s) == 4 && isHex(s) }

// isGUID matches `^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`.
func isGUID(s string) bool {
	groups := strings.Split(s, "-")
	if len(groups) != 5 {
		return false
	}
	for i, n := range []int{8, 4, 4, 4, 12} {
		if len(groups[i]) != n || !isHex(groups[i]) {
			return false
		}
	}
	return true
}

// isImageSize matches `^[0-9]+[KMGTP]?$`.
func isImageSize(s string) bool {
	end := digitsEnd(s, 0)
	return end > 0 && (end == len(s) || end == len(s)-1 && strings.IndexByte("KMGTP", s[end]) >= 0)
}

// isGPTSize matches `^(100%|[0-9]+[KMGTP]?)$`.
func isGPTSize(s string) bool { return s == "100%" || isImageSize(s) }

// isSwapfileSize matches `^[0-9]+[KMGTP]$`.
func isSwapfileSize(s string) bool { return isImageSize(s) && !isDigit(s[len(s)-1]) }

// isGPTPosition matches `^[+-]?[0-9]+([KMGTPkmgtp]([iI]?[bB])?|[sS])?$`.
func isGPTPosition(s string) bool {
	start := 0
	if s != "" && (s[0] == '+' || s[0] == '-') {
		start = 1
	}
	end := digitsEnd(s, start)
	if end == start {
		return false
	}
	unit := s[end:]
	switch {
	case unit == "" || unit == "s" || unit == "S":
		return true
	case strings.IndexByte("KMGTPkmgtp", unit[0]) < 0:
		return false
	}
	switch lowerASCII(unit[1:]) {
	case "", "b", "ib":
		return true
	}
	return false
}

// isLVSize matches lvSize's expression: a number (with an optional fraction), then a
// unit letter and any letters, or % and an optional prefix of lvm's VG, LV, PVS, FREE or
// ORIGIN in either case.
func isLVSize(s string) bool {
	end := digitsEnd(s, 0)
	if end == 0 {
		return false
	}
	if end < len(s) && s[end] == '.' {
		frac := digitsEnd(s, end+1)
		if frac == end+1 {
			return false
		}
		end = frac
	}
	rest := s[end:]
	switch {
	case rest == "":
		return true
	case strings.IndexByte("bskmgtpeBSKMGTPE", rest[0]) >= 0:
		for i := 1; i < len(rest); i++ {
			if c := rest[i] | 0x20; c < 'a' || c > 'z' {
				return false
			}
		}
		return true
	case rest[0] != '%':
		return false
	}
	of := lowerASCII(rest[1:])
	if of == "" {
		return true
	}
	for _, word := range []string{"vg", "lv", "pvs", "free", "origin"} {
		if strings.HasPrefix(word, of) {
			return true
		}
	}
	return false
}

// lowerASCII is s with A-Z as a-z and every other byte as it is (strings.ToLower would
// turn the Kelvin sign into k).
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// digitsEnd is the end of the run of ASCII digits in s that starts at i.
func digitsEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'z' }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; !isDigit(s[i]) && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
