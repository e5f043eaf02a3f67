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
