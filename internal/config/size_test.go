package config

import "testing"

func TestBinaryBytes(t *testing.T) {
	for in, want := range map[string]int64{"20M": 20 << 20, "1G": 1 << 30, "512": 512, "10k": 10 << 10, "0": 0, "2T": 2 << 40, "1P": 1 << 50} {
		if got, err := BinaryBytes(in); err != nil || got != want {
			t.Errorf("BinaryBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1M", "1.5G", "100%", " 1G", "2 GB", "9999999P", "+1G"} {
		if _, err := BinaryBytes(in); err == nil {
			t.Errorf("BinaryBytes(%q): no error", in)
		}
	}
}
