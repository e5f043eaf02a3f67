package codegen

import (
	"fmt"
	"strconv"
	"strings"
)

// PlaceGPT is disko_gpt_place (runtime.sh) in Go: the sectors that disko's
// `sgdisk --align-end --new` calls would give each partition of a blank disk of the given
// size (512-byte sectors, the usable range sfdisk and sgdisk leave around a GPT). Disk
// images are partitioned with it, so their tables equal the format script's;
// TestPlaceGPTMatchesRuntime holds the two to the same answers.
//
// It returns the first and last sector of every spec, in order; when a partition does not
// fit, the error names it and the sectors of the partitions before it are returned.
func PlaceGPT(diskBytes int64, specs []GPTPartitionSpec) ([][2]int64, error) {
	p := gptPlacer{ss: 512, first: 34, last: diskBytes/512 - 34}
	if p.last < p.first {
		return nil, fmt.Errorf("a disk of %d bytes has no room for a GPT", diskBytes)
	}
	out := make([][2]int64, 0, len(specs))
	for _, s := range specs {
		start, end, ok, err := p.place(s.Start, s.End, int64(s.Align))
		if err != nil {
			return out, err
		}
		if !ok {
			return out, fmt.Errorf("partition %d (%s) does not fit: start %s, end %s on a disk of %d sectors of 512 bytes", s.Number, s.Label, s.Start, s.End, p.last+1)
		}
		out = append(out, [2]int64{start, end})
	}
	return out, nil
}

// gptPlacer holds the geometry and the ranges used so far, as the runtime's disko_ss,
// disko_first, disko_last, disko_us and disko_ue do.
type gptPlacer struct {
	ss, first, last int64
	us, ue          []int64
}

func (p *gptPlacer) free(s, e int64) bool {
	if !(s >= p.first && e <= p.last && s <= e) {
		return false
	}
	for i := range p.us {
		if !(e < p.us[i] || s > p.ue[i]) {
			return false
		}
	}
	return true
}

func (p *gptPlacer) lastInFree(s int64) int64 {
	r := p.last
	for i := range p.us {
		if p.us[i] > s && p.us[i]-1 < r {
			r = p.us[i] - 1
		}
	}
	return r
}

func (p *gptPlacer) firstFree(s int64) int64 {
	r := max(s, p.first)
	for moved := true; moved; {
		moved = false
		for i := range p.us {
			if r >= p.us[i] && r <= p.ue[i] {
				r = p.ue[i] + 1
				moved = true
			}
		}
	}
	if r > p.last {
		return 0
	}
	return r
}

func (p *gptPlacer) firstInLargest() int64 {
	var start, best, sel int64
	for {
		fb := p.firstFree(start)
		if fb == 0 {
			break
		}
		r := p.lastInFree(fb)
		if r-fb+1 > best {
			best = r - fb + 1
			sel = fb
		}
		start = r + 1
	}
	return sel
}

func (p *gptPlacer) align(s, a int64) int64 {
	if !(a > 1 && s%a != 0) {
		return s
	}
	later := (s/a + 1) * a
	earlier := later - a
	if p.free(earlier, s-1) {
		return earlier
	}
	if later <= p.lastInFree(s) && p.free(s+1, later) {
		return later
	}
	return s
}

// value is disko_gpt_value: spec is "0" or SIGN:V:UNITBYTES.
func (p *gptPlacer) value(spec string, low, high, def int64) (int64, error) {
	if spec == "0" {
		return def, nil
	}
	f := strings.Split(spec, ":")
	if len(f) != 3 {
		return 0, fmt.Errorf("%q is not a position spec", spec)
	}
	v, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a position spec", spec)
	}
	unit, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a position spec", spec)
	}
	if unit > 0 {
		if unit >= p.ss {
			v *= unit / p.ss
		} else {
			v /= p.ss / unit
		}
	}
	switch f[0] {
	case "+":
		if def == high {
			if v > 0 {
				return low + v - 1, nil
			}
			return low, nil
		}
		return def + v, nil
	case "-":
		if v > high {
			return 0, nil
		}
		return high - v, nil
	}
	return v, nil
}

// place is disko_gpt_place; ok is false where sgdisk would fail.
func (p *gptPlacer) place(startSpec, endSpec string, a int64) (s, e int64, ok bool, err error) {
	if a == 0 {
		a = max(1048576/p.ss, 1)
		for i := range p.us {
			for a > 1 && p.us[i]%a != 0 {
				a /= 2
			}
		}
	}
	low := p.align(p.firstInLargest(), a)
	high := p.lastInFree(low)
	if s, err = p.value(startSpec, low, high, low); err != nil {
		return 0, 0, false, err
	}
	if e, err = p.value(endSpec, s, high, high); err != nil {
		return 0, 0, false, err
	}
	if endSpec == "0" || strings.HasPrefix(endSpec, "-:") {
		if a > 1 && (e+1)%a != 0 && ((e+1)/a)*a-1 >= s {
			e = ((e+1)/a)*a - 1
		}
	}
	s = p.align(s, a)
	if s == 0 || !p.free(s, s) || s > e || p.lastInFree(s) < e {
		return 0, 0, false, nil
	}
	p.us = append(p.us, s)
	p.ue = append(p.ue, e)
	return s, e, true, nil
}
