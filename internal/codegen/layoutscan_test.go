package codegen

import (
	"fmt"
	"reflect"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// scanSample is a chunk as reach reads it: sets of names, in a stable order.
type scanSample struct {
	Funcs, Vars, Words, Cmds []string
	Runs                     bool
}

func scanSamples(t *testing.T, chunks []chunk) []scanSample {
	t.Helper()
	names := func(gs []guarded) []string {
		var out []string
		for _, g := range gs {
			if len(g.guards) > 0 {
				t.Errorf("%s is guarded by %v: the scan never reads `command -v` guards", g.name, g.guards)
			}
			out = append(out, g.name)
		}
		return slices.Compact(slices.Sorted(slices.Values(out)))
	}
	var out []scanSample
	for _, c := range chunks {
		out = append(out, scanSample{
			Funcs: slices.Sorted(slices.Values(c.funcs)), Vars: slices.Sorted(slices.Values(c.vars)),
			Words: names(c.words), Cmds: names(c.cmds), Runs: c.runs,
		})
	}
	return out
}

// checkScan compares the scan of a layout's code with its parse, and reports whether the
// scan answered.
func checkScan(t *testing.T, what string, d *config.Devices, opts Options) bool {
	t.Helper()
	g, err := newGen(d, opts)
	if err != nil {
		return false // refused before any code is written
	}
	code, err := g.code()
	if err != nil {
		return false
	}
	parsed, perr := parseLayout(code.all())
	scanned, ok := scanLayout(code.all())
	if !ok {
		return false
	}
	if perr != nil {
		t.Errorf("%s: the scan read code that does not parse (%v):\n%s", what, perr, code.all())
		return true
	}
	if got, want := scanSamples(t, scanned), scanSamples(t, parsed); !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w scanSample
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("%s: chunk %d of %d (parsed %d):\n scan  %+v\n parse %+v", what, i, len(got), len(want), g, w)
				break
			}
		}
	}
	return true
}

// TestScanLayout checks that scanLayout cuts the layout's code into the chunks that the
// parse makes of it, wherever it answers: on every corpus layout (where it must answer,
// or a compile parses after all), under other options, and on the rich layout with each
// of its strings in turn replaced by values that quoting, word splitting and the scan's
// own rules have to get right.
func TestScanLayout(t *testing.T) {
	optionSets := []Options{{}, {PathDirs: "/nix/store/abc-disko_die/bin:/nix/store/def-x/bin", RootMountpoint: "/mnt/a b"}}
	for name, d := range loadCorpus(t) {
		for i, opts := range optionSets {
			if !checkScan(t, fmt.Sprintf("%s (options %d)", name, i), d, opts) && !hasHooks(d) {
				t.Errorf("%s (options %d): the scan gave up on a layout without hooks, so its compiles parse", name, i)
			}
		}
	}
	layoutJSON := strings.Replace(richLayout, "BPW", "/tmp/bpw", 1)
	base := func() *config.Devices {
		d, err := config.Load([]byte(layoutJSON), config.LoadOptions{})
		if err != nil {
			t.Fatalf("the rich layout does not load: %v", err)
		}
		return d
	}
	values := []string{
		"a b", "it's", `"q"`, "$x", "#x", "-x", "disko_die", "disko_mount", "PATH", "a;b|c&&d", "a&b",
		"x=1", "a[0]=1", "{a}", `\`, "fi", "!", "a\nb", "2>&1", "`x`", "$(x)", "trap", "command -v x", "",
		"\x85", // not UTF-8: the parse refuses the code, so the scan must not read it
	}
	sites := len(stringSites(base()))
	var scanned, fellBack atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, goruntime.NumCPU())
	for i := range sites {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, v := range values {
				d := base()
				site := stringSites(d)[i]
				site.set(v)
				if checkScan(t, fmt.Sprintf("%s = %q", site.where, v), d, Options{}) {
					scanned.Add(1)
				} else {
					fellBack.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("rich layout: %d variants scanned and equal to the parse, %d parsed", scanned.Load(), fellBack.Load())
	if scanned.Load() == 0 {
		t.Error("no variant of the rich layout was scanned: the comparison tested nothing")
	}
}

// FuzzScanLayout sets one string of the rich layout to any value and checks that the
// scan and the parse agree (its seeds run with the tests; `go test -fuzz FuzzScanLayout
// ./internal/codegen` searches further: 160,000 values in five minutes found only a
// string that is not UTF-8, which the scan now leaves to the parse).
func FuzzScanLayout(f *testing.F) {
	layoutJSON := strings.Replace(richLayout, "BPW", "/tmp/bpw", 1)
	base := func(t testing.TB) *config.Devices {
		d, err := config.Load([]byte(layoutJSON), config.LoadOptions{})
		if err != nil {
			t.Fatalf("the rich layout does not load: %v", err)
		}
		return d
	}
	sites := len(stringSites(base(f)))
	for _, v := range []string{"a b", "$(x)", "fi", "disko_die", "x=1", "'", `"`, `\`, "\x85"} {
		f.Add(uint16(3), v)
		f.Add(uint16(100), v)
	}
	f.Fuzz(func(t *testing.T, site uint16, value string) {
		d := base(t)
		s := stringSites(d)[int(site)%sites]
		s.set(value)
		checkScan(t, fmt.Sprintf("%s = %q", s.where, value), d, Options{})
	})
}

// hasHooks reports whether any node of the layout has a hook (its code reaches the
// script inside a subshell, which the scan does not read).
func hasHooks(d *config.Devices) bool {
	return slices.ContainsFunc(stringSites(d), func(s stringSite) bool { return s.hook && s.value != "" })
}
