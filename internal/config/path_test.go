package config

import "testing"

// TestPathShort: comments and messages count long runs of .content, and leave short
// ones and names that only start with "content" as they are.
func TestPathShort(t *testing.T) {
	root := NewPath("disko.devices.disk.main.content.partitions.root")
	deep := root
	for range 7 {
		deep = deep.Field("content")
	}
	for _, c := range []struct {
		p    Path
		want string
	}{
		{root.Field("content").Field("content"), root.String() + ".content.content"},
		{deep, root.String() + "(.content ×7)"},
		{deep.Field("contentx").Field("content"), root.String() + "(.content ×7).contentx.content"},
		{deep.Field("lvs").Attr("a b").Field("content"), root.String() + `(.content ×7).lvs."a b".content`},
	} {
		if got := c.p.Short(); got != c.want {
			t.Errorf("short(%s) = %s, want %s", c.p, got, c.want)
		}
	}
}
