package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/codegen/nixos"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// validate is the final word: a layout that config.Load accepts must compile to scripts
// and to the NixOS configuration (JSON and Nix). These tests and the fuzz target hold
// config to that over the corpus and over layouts mutated at every value.

// corpus returns the committed JSON of the shared corpus layouts, by file name.
func corpus(t testing.TB) map[string][]byte {
	files, err := filepath.Glob("testdata/corpus/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus JSON under testdata/corpus: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = data
	}
	return out
}

// checkFinal loads data and, when it loads, compiles it; every disagreement fails t.
func checkFinal(t *testing.T, what string, data []byte) {
	t.Helper()
	d, err := config.Load(data, config.LoadOptions{})
	if err != nil {
		var probs config.Problems
		if !errors.As(err, &probs) {
			t.Fatalf("%s: the error is not config.Problems: %T %v", what, err, err)
		}
		for _, p := range probs {
			if !strings.HasPrefix(p.Path, config.RootPath) || p.Message == "" {
				t.Fatalf("%s: a problem without its option path or message: %q", what, p)
			}
		}
		return
	}
	if _, err := codegen.Generate(d, codegen.Options{}); err != nil {
		t.Errorf("%s: validate accepts it, but the scripts do not: %v\nlayout: %s", what, err, data)
	}
	if _, err := nixos.JSON(d); err != nil {
		t.Errorf("%s: validate accepts it, but the NixOS configuration (JSON) does not: %v\nlayout: %s", what, err, data)
	}
	if _, err := nixos.Nix(d); err != nil {
		t.Errorf("%s: validate accepts it, but the NixOS configuration (Nix) does not: %v\nlayout: %s", what, err, data)
	}
}

// replacements are the values put in place of each value of a layout: every JSON kind,
// and strings and numbers that some tool, mount option, fstab line or Nix string cannot
// carry.
var replacements = []any{
	nil, true, json.Number("-1"), json.Number("0"), json.Number("99999999999999999999"), json.Number("1e999"),
	"", "-f", "1MiB", "-10m", "a\"b", "a,b", "a\\b", "x\x00y", "/a\nb", "😀", "500X", "99999999999999999999G", "../up", "$(id) `id`",
	[]any{}, []any{nil}, map[string]any{}, map[string]any{"x": nil},
}

// site is one value of a decoded JSON tree, with a way to replace it.
type site struct {
	path string
	set  func(any)
}

// sites lists every value below v (v itself excluded) in a fixed order.
func sites(v any, path string) []site {
	var out []site
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, site{path + "." + k, func(n any) { v[k] = n }})
			out = append(out, sites(v[k], path+"."+k)...)
		}
	case []any:
		for i := range v {
			p := path + "[" + strconv.Itoa(i) + "]"
			out = append(out, site{p, func(n any) { v[i] = n }})
			out = append(out, sites(v[i], p)...)
		}
	}
	return out
}

func decode(t testing.TB, data []byte) any {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCorpusCompiles(t *testing.T) {
	for name, data := range corpus(t) {
		if _, err := config.Load(data, config.LoadOptions{}); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		checkFinal(t, name, data)
	}
}

// TestValidateIsFinal replaces every value of every corpus layout by each replacement and
// checks that what loads compiles. With -short, only every seventh mutation is tried.
func TestValidateIsFinal(t *testing.T) {
	loaded, tried := 0, 0
	for name, data := range corpus(t) {
		n := len(sites(decode(t, data), ""))
		for i := range n {
			for j, r := range replacements {
				if testing.Short() && (i*len(replacements)+j)%7 != 0 {
					continue
				}
				tree := decode(t, data)
				s := sites(tree, "")[i]
				s.set(r)
				mutated, err := json.Marshal(tree)
				if err != nil {
					t.Fatal(err)
				}
				tried++
				if _, err := config.Load(mutated, config.LoadOptions{}); err == nil {
					loaded++
				}
				checkFinal(t, name+" with "+s.path+" = "+string(mustJSON(t, r)), mutated)
			}
		}
	}
	t.Logf("%d mutated layouts, %d of them valid", tried, loaded)
}

func mustJSON(t testing.TB, v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzLoad checks that no input makes loading panic, that every problem carries its
// option path, and that a layout that loads compiles. Inputs it found are kept as
// regression cases in testdata/fuzz/FuzzLoad.
//
// Byte-level mutation of JSON rarely yields another well-formed layout, so the fuzzer
// also steers a structural mutation: when data is JSON, the value at position site (of
// all values, in a fixed order) is replaced by a JSON value of the kind picked by kind,
// built from text; with insert set, a new entry named text is added there instead. This
// puts null, booleans, numbers, strings, lists and attribute sets into every map.
func FuzzLoad(f *testing.F) {
	for _, data := range corpus(f) {
		f.Add(data, uint16(0), uint8(0), "", false)
		f.Add(data, uint16(7), uint8(0), "", false)
		f.Add(data, uint16(12), uint8(3), "-f", false)
		f.Add(data, uint16(5), uint8(0), "x", true)
	}
	f.Fuzz(func(t *testing.T, data []byte, at uint16, kind uint8, text string, insert bool) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var tree any
		if dec.Decode(&tree) == nil && !dec.More() {
			if all := sites(tree, ""); len(all) > 0 {
				s := all[int(at)%len(all)]
				v := fuzzValue(kind, text)
				if insert {
					v = map[string]any{text: v}
				}
				s.set(v)
			}
			mutated, err := json.Marshal(tree)
			if err == nil {
				data = mutated
			}
		}
		checkFinal(t, "fuzzed", data)
	})
}

// fuzzValue is a JSON value of the kind k picks, built from text.
func fuzzValue(k uint8, text string) any {
	switch k % 8 {
	case 0:
		return nil
	case 1:
		return len(text)%2 == 0
	case 2:
		if _, err := json.Number(text).Float64(); err == nil && json.Valid([]byte(text)) {
			return json.Number(text)
		}
		return json.Number("-1")
	case 3:
		return text
	case 4:
		return []any{}
	case 5:
		return []any{text, nil}
	case 6:
		return map[string]any{}
	default:
		return map[string]any{text: nil}
	}
}
