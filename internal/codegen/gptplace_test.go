package codegen

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPlaceGPTMatchesRuntime holds PlaceGPT (Go, used for disk images) to disko_gpt_place
// (runtime.sh, used by the format script, itself checked against sgdisk by
// TestGPTPlacementMatchesSgdisk): the cases of that test, then random layouts.
func TestPlaceGPTMatchesRuntime(t *testing.T) {
	type part struct{ start, end string }
	cases := []struct {
		size  int64
		parts []part
	}{
		{1 << 30, []part{{"0", "+500M"}, {"0", "-0"}}},
		{1 << 30, []part{{"1M", "128M"}, {"0", "-0"}}},
		{2 << 30, []part{{"0", "+500M"}, {"0", "+10M"}, {"0", "-1G"}, {"0", "-0"}}},
		{1 << 30, []part{{"0", "+1M"}, {"0", "+512M"}, {"0", "-0"}}},
		{1 << 30, []part{{"0", "+1000K"}, {"0", "+1500K"}, {"0", "-10M"}, {"0", "+3000"}}},
		{1 << 30, []part{{"34s", "2047s"}, {"0", "+1M"}, {"0", "-0"}}},
		{1 << 30, []part{{"2049", "+1M"}, {"0", "+1M"}, {"100M", "+1M"}, {"0", "+1M"}}},
		{1 << 30, []part{{"600M", "+100M"}, {"0", "+100M"}, {"0", "-0"}}},
		{64 << 20, []part{{"0", "+100M"}}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	positions := []string{"0", "+1M", "+3000", "+1500K", "-10M", "-0", "1M", "2048s", "+7M", "-1", "100M", "+64M"}
	for range 40 {
		var ps []part
		for range 1 + rng.IntN(5) {
			ps = append(ps, part{[]string{"0", "0", "0", "1M", "2049", "40M"}[rng.IntN(6)], positions[rng.IntN(len(positions))]})
		}
		cases = append(cases, struct {
			size  int64
			parts []part
		}{int64(64+rng.IntN(512)) << 20, ps})
	}
	for i, c := range cases {
		var specs []GPTPartitionSpec
		var shellSpecs []string
		for j, p := range c.parts {
			align := 0
			if strings.HasSuffix(p.start, "s") || strings.HasSuffix(p.end, "s") {
				align = 1
			}
			start, err := posSpec(p.start)
			if err != nil {
				t.Fatal(err)
			}
			end, err := posSpec(p.end)
			if err != nil {
				t.Fatal(err)
			}
			specs = append(specs, GPTPartitionSpec{Number: j + 1, Start: start, End: end, Align: align})
			shellSpecs = append(shellSpecs, fmt.Sprintf("%s %s %d", start, end, align))
		}
		want, err := placeInShell(c.size, shellSpecs)
		if err != nil {
			t.Fatal(err)
		}
		placed, err := PlaceGPT(c.size, specs)
		var got []string
		for _, r := range placed {
			got = append(got, fmt.Sprintf("%d %d", r[0], r[1]))
		}
		// The runtime goes on after a partition that does not fit ("0 0"); PlaceGPT stops there.
		if err != nil {
			got = append(got, "0 0")
			want = want[:len(got)]
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("case %d %v on %d bytes:\nruntime: %q\nGo:      %q (%v)", i, c.parts, c.size, want, got, err)
		}
	}
}

// TestGPTTableComment: the table above disko_gpt names each partition decoded, one line
// each, whatever its name holds.
func TestGPTTableComment(t *testing.T) {
	s, err := Generate(mustLoad(t, `{"disk": {"main": {"device": "/dev/vdb", "content": {"type": "gpt", "partitions": {
		"ESP": {"size": "500M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot"}},
		"odd": {"label": "a\nb'$(x)", "size": "1G", "alignment": 4096, "content": {"type": "swap"}},
		"root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	format := string(s.Format)
	for _, want := range []string{
		"  #  number  name            start          size  end    type\n",
		"  #  1       disk-main-ESP   0 (next free)  500M  +500M  EF00\n",
		"  #  2       \"a\\nb'$(x)\"     0 (next free)  1G    +1G    8200 alignment 4096\n",
		"  #  3       disk-main-root  0 (next free)  100%  -0     8300\n",
	} {
		if !strings.Contains(format, want) {
			t.Errorf("format.sh lacks the table line %q", want)
		}
	}
}
