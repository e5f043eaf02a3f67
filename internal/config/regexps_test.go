package config

import (
	"regexp"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/lazyregexp"
)

// TestRegexpsCompile compiles every regular expression of the package, which are compiled
// on first use only (internal/lazyregexp), so that a typo fails here and not in a user's run.
func TestRegexpsCompile(t *testing.T) {
	all := []*lazyregexp.Regexp{fsFormat, gptTypeCode, guid, appendNumber, dashPart, pNumber, mdOrMapper, loopDevice}
	for _, re := range patterns {
		all = append(all, re)
	}
	for _, re := range all {
		if _, err := regexp.Compile(re.String()); err != nil {
			t.Error(err)
		}
	}
}

// TestMatchersAgree holds each hand-written matcher (matchers.go) to the expression it
// stands in for: every string up to a length over an alphabet of the bytes that matter,
// and every one-byte change (substitution, insertion, deletion) of longer examples.
func TestMatchersAgree(t *testing.T) {
	tests := []struct {
		name     string
		re       *lazyregexp.Regexp
		alphabet string
		maxLen   int
		examples []string
	}{
		{"fsFormat", fsFormat, "aZ0._+-/ \xc3", 5, []string{"ext4", "fat32", "bcachefs", "f2fs.x-y_z+w"}},
		{"gptTypeCode", gptTypeCode, "09afAFg-", 5, []string{"EF00", "8300"}},
		{"guid", guid, "09afAFg-", 4, []string{"0FC63DAF-8483-4772-8E79-3D69D8477DE4", "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"}},
		{"imageSize", patterns["imageSize"], "09KPpx%", 5, []string{"2G", "1024M"}},
		{"gptSize", patterns["gptSize"], "019K%x", 5, []string{"100%", "500M"}},
		{"gptPosition", patterns["gptPosition"], "+-09KkPpiIbBsSx.", 5, []string{"+500MiB", "-10GB", "2048s", "0"}},
		{"lvSize", patterns["lvSize"], "09.bBeEz%x", 5, []string{"100%FREE", "1.5GiB", "20%VG", "50%ORIGIN", "10%PVS", "1e", "100%"}},
		{"lvSize percentages", patterns["lvSize"], "1%vgplsfreoinGx", 5, []string{"1%origin", "1%OrIgIn", "1%free", "1%pvs", "1%lv"}},
		{"swapfileSize", patterns["swapfileSize"], "09KPx", 4, []string{"16G"}},
	}
	for _, tt := range tests {
		if s, found := tt.re.Disagreement(tt.alphabet, tt.maxLen); found {
			t.Errorf("%s: the matcher and %s disagree on %q", tt.name, tt.re, s)
		}
		for _, ex := range tt.examples {
			for _, s := range oneByteChanges(ex, tt.alphabet) {
				if got, want := tt.re.MatchString(s), tt.re.Regexp().MatchString(s); got != want {
					t.Errorf("%s: the matcher says %v and %s says %v for %q", tt.name, got, tt.re, want, s)
				}
			}
		}
	}
}

// oneByteChanges is s with every byte replaced by, and every gap filled with, each byte
// of alphabet, and with each byte left out (and s itself).
func oneByteChanges(s, alphabet string) []string {
	out := []string{s}
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			out = append(out, s[:i]+s[i+1:])
		}
		for j := 0; j < len(alphabet); j++ {
			out = append(out, s[:i]+alphabet[j:j+1]+s[i:])
			if i < len(s) {
				out = append(out, s[:i]+alphabet[j:j+1]+s[i+1:])
			}
		}
	}
	return out
}
