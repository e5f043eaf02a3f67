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
