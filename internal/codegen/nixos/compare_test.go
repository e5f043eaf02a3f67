package nixos

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// additions lists the values our configuration may hold where disko's has none, as
// path.Match patterns over JSON paths like `fileSystems./boot.neededForBoot`. Every entry
// needs a reason a user switching from disko is better off with it.
//
// It is empty: the generator adds nothing to disko's values. Top-level `boot = {}` and
// `swapDevices = []` are not additions (empty containers carry no value, and disko's
// module defines both options for every layout).
var additions []string

// subset reports, one line per difference with its JSON path, where ours does not hold
// every value of want unchanged, and every value of ours outside want that no pattern of
// allowed permits. Lists are compared element by element; lists of attribute sets are
// sorted first, as the expected files of the corpus are (by their JSON text).
func subset(want, ours any, allowed []string) []string {
	var diffs []string
	compare(&diffs, nil, want, ours, allowed)
	return diffs
}

// jsonPath is a path of attribute names and list positions ("[0]").
type jsonPath []string

func (p jsonPath) key(k string) jsonPath { return append(slices.Clip(p), k) }

func (p jsonPath) String() string {
	if len(p) == 0 {
		return "(top)"
	}
	var b strings.Builder
	for i, seg := range p {
		if i > 0 && !strings.HasPrefix(seg, "[") {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

func compare(diffs *[]string, at jsonPath, want, ours any, allowed []string) {
	report := func(at jsonPath, format string, args ...any) {
		*diffs = append(*diffs, at.String()+": "+fmt.Sprintf(format, args...))
	}
	switch w := want.(type) {
	case map[string]any:
		o, ok := ours.(map[string]any)
		if !ok {
			report(at, "want an attribute set %s, have %s", text(w), text(ours))
			return
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			if _, ok := o[k]; !ok {
				report(at.key(k), "missing, want %s", text(w[k]))
				continue
			}
			compare(diffs, at.key(k), w[k], o[k], allowed)
		}
		for _, k := range slices.Sorted(maps.Keys(o)) {
			if _, ok := w[k]; !ok {
				extra(diffs, at.key(k), o[k], allowed)
			}
		}
	case []any:
		o, ok := ours.([]any)
		if !ok {
			report(at, "want a list %s, have %s", text(w), text(ours))
			return
		}
		if len(o) != len(w) {
			report(at, "want %d elements %s, have %d %s", len(w), text(w), len(o), text(o))
			return
		}
		w, o = sortSets(w), sortSets(o)
		for i := range w {
			compare(diffs, at.key(fmt.Sprintf("[%d]", i)), w[i], o[i], allowed)
		}
	default:
		if !reflect.DeepEqual(normal(want), normal(ours)) {
			report(at, "want %s, have %s", text(want), text(ours))
		}
	}
}

// extra reports the values of an addition that no pattern allows; empty containers add
// nothing and pass.
func extra(diffs *[]string, at jsonPath, ours any, allowed []string) {
	if allowedAt(at, allowed) {
		return
	}
	switch o := ours.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(o)) {
			extra(diffs, at.key(k), o[k], allowed)
		}
		return
	case []any:
		if len(o) == 0 {
			return
		}
	}
	*diffs = append(*diffs, fmt.Sprintf("%s: not in disko's output and not an allowed addition: %s", at, text(ours)))
}

// allowedAt matches a path against patterns whose dot-separated segments are an attribute
// name or * for any one. The path keeps the keys it was built from, so mount points with
// dots and slashes in them are single segments.
func allowedAt(at jsonPath, allowed []string) bool {
	for _, pattern := range allowed {
		segs := strings.Split(pattern, ".")
		if len(segs) != len(at) {
			continue
		}
		match := true
		for i, seg := range segs {
			match = match && (seg == "*" || seg == at[i])
		}
		if match {
			return true
		}
	}
	return false
}

// sortSets sorts a list whose elements are all attribute sets by their JSON text.
func sortSets(l []any) []any {
	for _, e := range l {
		if _, ok := e.(map[string]any); !ok {
			return l
		}
	}
	l = slices.Clone(l)
	slices.SortStableFunc(l, func(a, b any) int { return strings.Compare(text(a), text(b)) })
	return l
}

// normal makes numbers comparable whatever decoded them.
func normal(v any) any {
	switch v := v.(type) {
	case int64:
		return float64(v)
	case int:
		return float64(v)
	case json.Number:
		f, _ := v.Float64()
		return f
	}
	return v
}

func text(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

func TestSubset(t *testing.T) {
	decode := func(s string) any {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("bad test JSON %s: %v", s, err)
		}
		return v
	}
	tests := []struct {
		name, want, ours string
		allowed          []string
		diffs            []string
	}{
		{"equal", `{"a":{"b":[1,"x"]}}`, `{"a":{"b":[1,"x"]}}`, nil, nil},
		{"empty containers may be added", `{"a":1}`, `{"a":1,"boot":{},"swapDevices":[]}`, nil, nil},
		{"expected empty set is matched by a set", `{"boot":{}}`, `{"boot":{}}`, nil, nil},
		{"missing key", `{"a":{"b":1,"c":2}}`, `{"a":{"b":1}}`, nil, []string{"a.c: missing, want 2"}},
		{"changed value", `{"fileSystems":{"/":{"device":"x"}}}`, `{"fileSystems":{"/":{"device":"y"}}}`, nil,
			[]string{`fileSystems./.device: want "x", have "y"`}},
		{"null is a value", `{"priority":null}`, `{"priority":1}`, nil, []string{"priority: want null, have 1"}},
		{"string list order matters", `{"m":["a","b"]}`, `{"m":["b","a"]}`, nil,
			[]string{`m[0]: want "a", have "b"`, `m[1]: want "b", have "a"`}},
		{"list length", `{"m":["a"]}`, `{"m":["a","a"]}`, nil, []string{`m: want 1 elements ["a"], have 2 ["a","a"]`}},
		{"lists of sets are sorted", `{"s":[{"d":"a"},{"d":"b"}]}`, `{"s":[{"d":"b"},{"d":"a"}]}`, nil, nil},
		{"addition refused", `{"fileSystems":{"/":{"device":"x"}}}`, `{"fileSystems":{"/":{"device":"x","neededForBoot":true}}}`, nil,
			[]string{"fileSystems./.neededForBoot: not in disko's output and not an allowed addition: true"}},
		{"addition allowed", `{"fileSystems":{"/":{"device":"x"}}}`, `{"fileSystems":{"/":{"device":"x","neededForBoot":true}}}`,
			[]string{"fileSystems.*.neededForBoot"}, nil},
		{"nested addition refused", `{}`, `{"boot":{"supportedFilesystems":["zfs"]}}`, nil,
			[]string{`boot.supportedFilesystems: not in disko's output and not an allowed addition: ["zfs"]`}},
		{"type change", `{"a":{"b":1}}`, `{"a":[1]}`, nil, []string{`a: want an attribute set {"b":1}, have [1]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := subset(decode(tt.want), decode(tt.ours), tt.allowed)
			if !slices.Equal(got, tt.diffs) {
				t.Errorf("subset(%s, %s) =\n%s\nwant\n%s", tt.want, tt.ours, strings.Join(got, "\n"), strings.Join(tt.diffs, "\n"))
			}
		})
	}
}

// TestSubsetCatchesEveryChange changes, one at a time, every value of every expected file
// of the corpus (and drops every key and list element) and checks that the comparison
// reports it: the corpus test cannot pass by comparing too little.
func TestSubsetCatchesEveryChange(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "expected", "*.nixos.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no expected files under %s: %v", corpusDir, err)
	}
	count := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		want := decodeJSON(t, data)
		for _, m := range mutations(want) {
			count++
			if diffs := subset(want, m.value, additions); len(diffs) == 0 {
				t.Errorf("%s: %s went unnoticed", filepath.Base(file), m.what)
			}
		}
	}
	t.Logf("%d mutations of %d files, all reported", count, len(files))
}

type mutation struct {
	what  string
	value any
}

// mutations returns copies of v with one change each: every leaf altered, every
// non-empty list shortened, every key of a non-empty set removed.
func mutations(v any) []mutation {
	var out []mutation
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			without := maps.Clone(v)
			delete(without, k)
			out = append(out, mutation{"removing " + k, without})
			for _, m := range mutations(v[k]) {
				changed := maps.Clone(v)
				changed[k] = m.value
				out = append(out, mutation{k + ": " + m.what, changed})
			}
		}
	case []any:
		if len(v) > 0 {
			out = append(out, mutation{"dropping the last element", slices.Clone(v[:len(v)-1])})
		}
		for i := range v {
			for _, m := range mutations(v[i]) {
				changed := slices.Clone(v)
				changed[i] = m.value
				out = append(out, mutation{fmt.Sprintf("[%d]: %s", i, m.what), changed})
			}
		}
	case string:
		out = append(out, mutation{"changing " + v, v + "X"})
	case bool:
		out = append(out, mutation{"negating", !v})
	case json.Number:
		out = append(out, mutation{"changing " + v.String(), json.Number(v.String() + "1")})
	case nil:
		out = append(out, mutation{"setting null", "X"})
	}
	return out
}
