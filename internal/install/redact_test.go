package install

import (
	"bytes"
	"testing"
)

func TestRedactor(t *testing.T) {
	var out bytes.Buffer
	r := NewRedactor(&out)
	r.Add("hunter2-secret", "multi\nline-secret")
	r.Write([]byte("the key is hunt"))
	r.Write([]byte("er2-secret, ok\nline-secret and multi\n"))
	r.Write([]byte("tail hunter2-secret"))
	r.Flush()
	want := "the key is [redacted], ok\n[redacted] and [redacted]\ntail [redacted]"
	if got := out.String(); got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

// TestRedactorShortSecrets: secrets shorter than 8 bytes are redacted where
// they stand as a token, and left alone inside other words.
func TestRedactorShortSecrets(t *testing.T) {
	tests := []struct {
		secret, in, want string
	}{
		{"ab", "SUDO_PASSWORD=ab", "SUDO_PASSWORD=[redacted]"},
		{"ab", "+ printf %s ab\n", "+ printf %s [redacted]\n"},
		{"ab", "wrong password 'ab': denied", "wrong password '[redacted]': denied"},
		{"ab", "ab", "[redacted]"},
		{"ab", "ab ab", "[redacted] [redacted]"},
		{"ab", "table abc lab", "table abc lab"},
		{"ab", "tab ab", "tab [redacted]"},
		{"ab", "täab", "täab"},
		{"x", "x=1, mix, x", "[redacted]=1, mix, [redacted]"},
		{"!", "done!", "done[redacted]"},
		{"p@ss", "user p@ss@host p@sss", "user [redacted]@host p@sss"},
		{"-pw", "x-pw y", "x[redacted] y"},
		{"1234567", "pin 1234567 or 12345678", "pin [redacted] or 12345678"},
		{"12345678", "pin 012345678", "pin 0[redacted]"},
	}
	for _, tt := range tests {
		r := NewRedactor(nil)
		r.Add(tt.secret)
		if got := r.Redact(tt.in); got != tt.want {
			t.Errorf("secret %q: Redact(%q) = %q, want %q", tt.secret, tt.in, got, tt.want)
		}
	}
}

// TestRedactorLongestFirst: a secret that contains another is redacted
// whole, not as the shorter one plus a visible rest.
func TestRedactorLongestFirst(t *testing.T) {
	r := NewRedactor(nil)
	r.Add("abc", "abc def")
	if got := r.Redact("x abc def y abc"); got != "x [redacted] y [redacted]" {
		t.Errorf("Redact = %q", got)
	}
	r.Add(" ", "")
	if got := r.Redact("a b"); got != "a b" {
		t.Errorf("blank secrets redacted something: %q", got)
	}
}
