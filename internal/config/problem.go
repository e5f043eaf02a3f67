package config

import (
	"fmt"
	"slices"
	"strings"
)

// RootPath is the option path every problem is reported under, as users write it.
const RootPath = "disko.devices"

// Problem is one thing wrong with a layout, reported at the option path the user wrote so
// that it can be found in the source without reading Go.
type Problem struct {
	Path    string
	Message string
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// Problems is every problem found in one pass. It is an error so that callers can return
// it as is, and errors.As finds it.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps *Problems) add(path Path, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path.String(), Message: fmt.Sprintf(format, args...)})
}

// outside drops the problems at or below a path that already has one of earlier: a value
// the decoder rejected is not reported again by the checks that read it.
func (ps Problems) outside(earlier Problems) Problems {
	var out Problems
	for _, p := range ps {
		if !slices.ContainsFunc(earlier, func(e Problem) bool {
			return p.Path == e.Path || strings.HasPrefix(p.Path, e.Path+".") || strings.HasPrefix(p.Path, e.Path+"[")
		}) {
			out = append(out, p)
		}
	}
	return out
}

// suggest returns the candidate closest to name, or "" when none is close enough to be a
// likely typo (one edit per three characters; none for one-character values).
func suggest(name string, candidates []string) string {
	best, bestDist := "", max(1, len(name)/3)+1
	for _, c := range candidates {
		if strings.EqualFold(c, name) {
			return c
		}
		if len(name) < 2 {
			continue
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps of neighbours
// that turn a into b (optimal string alignment distance): a swap is one typo.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
