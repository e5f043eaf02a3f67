package lazyregexp

import "testing"

func TestCompilesOnFirstUse(t *testing.T) {
	r := New(`^a(b+)$`)
	if r.String() != `^a(b+)$` {
		t.Errorf("String() = %q", r.String())
	}
	if !r.MatchString("abb") || r.MatchString("ba") {
		t.Error("MatchString disagrees with regexp")
	}
	if m := r.FindStringSubmatch("abbb"); len(m) != 2 || m[1] != "bbb" {
		t.Errorf("FindStringSubmatch = %q", m)
	}
	if r.Regexp() != r.Regexp() {
		t.Error("compiled twice")
	}
}

func TestBadSyntaxPanicsOnUse(t *testing.T) {
	r := New(`(`) // no panic here
	defer func() {
		if recover() == nil {
			t.Error("no panic on first use of a bad expression")
		}
	}()
	r.MatchString("x")
}

func TestWithMatcher(t *testing.T) {
	digits := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return s != ""
	}
	r := WithMatcher(`^[0-9]+$`, digits)
	if !r.MatchString("42") || r.MatchString("4a") {
		t.Error("MatchString does not use the matcher's answer")
	}
	if s, found := r.Disagreement("0a", 4); found {
		t.Errorf("an agreeing matcher disagrees on %q", s)
	}
	// A matcher that forgets the empty string is caught.
	wrong := WithMatcher(`^[0-9]*$`, digits)
	if s, found := wrong.Disagreement("0a", 3); !found || s != "" {
		t.Errorf("Disagreement = %q, %v; want \"\", true", s, found)
	}
	// So is one that accepts too much, deeper down.
	wrong = WithMatcher(`^[0-9]{1,2}$`, digits)
	if s, found := wrong.Disagreement("0a", 3); !found || s != "000" {
		t.Errorf("Disagreement = %q, %v; want \"000\", true", s, found)
	}
	if m := r.FindStringIndex("x42"); len(m) != 0 {
		t.Errorf("FindStringIndex = %v for an anchored expression", m)
	}
}
