// Package shelltest holds the values that quoting tests feed to a shell, so that every
// place that turns a value into shell text (internal/shell, codegen's Q) is tried with the
// same hostile strings.
package shelltest

import (
	"math/rand/v2"
	"strings"
)

// hostile are values that break naive quoting; PWNED stands for a file that must never be
// created.
var hostile = []string{
	"", " ", "a b", "'", "''", `"`, `\`, `\'`, "$HOME", "${HOME}", "$(touch PWNED)", "`touch PWNED`",
	"a\nb", "\n", "\r", "\t", "\x01\x7f", "-rf", "--", "-", "*", "?", "[a]", "{a,b}", "~", "~root",
	"!", "!!", "#x", "a;b", "a|b", "a&b", "a>b", "a<b", "(a)", "$((1+1))", "^x", "ü€😀", "\xff\xfe",
	"=", "a=b", "%s", "x'$(touch PWNED)'y", `x"$(touch PWNED)"y`, "'\n'", "\\\n", "a  b\t\tc\n",
}

// Hostile returns the hostile values, with pwned as the file a value that was executed
// would create.
func Hostile(pwned string) []string {
	out := make([]string, len(hostile))
	for i, s := range hostile {
		out[i] = strings.ReplaceAll(s, "PWNED", pwned)
	}
	return out
}

// Random returns n random values of up to 11 bytes, mostly shell metacharacters and
// otherwise any byte but NUL (which no argument can hold); the same n give the same values.
func Random(n int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab '\"\\$`(){}[]*?~!#;&|<>\n\t\r-=%^")
	out := make([]string, n)
	for v := range out {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = byte(1 + rng.IntN(255))
			} else {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		out[v] = string(b)
	}
	return out
}
