package codegen

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/diskoanywhere/diskoanywhere/internal/config"
)

// deepLUKS is a layout of depth LUKS containers, each inside the one before, on one partition.
func deepLUKS(depth int) string {
	var b strings.Builder
	b.WriteString(`{"disk": {"main": {"device": "/dev/vdb", "content": {"type": "gpt", "partitions": {"root": {"size": "100%", "content": `)
	for i := range depth {
		fmt.Fprintf(&b, `{"type": "luks", "name": "crypt%d", "settings": {"keyFile": "/tmp/k"}, "content": `, i)
	}
	b.WriteString(`{"type": "filesystem", "format": "ext4", "mountpoint": "/"}`)
	b.WriteString(strings.Repeat("}", depth) + "}}}}}}")
	return b.String()
}

// BenchmarkDeepNesting compiles (config.Load and Generate) layouts of 1000, 2000 and 4000
// nested LUKS containers, in turn in every round, and reports the median time of each and
// the growth of each step, t(4000)/t(1000) divided by 4: 1 when its time is linear in
// the layout's size.
func BenchmarkDeepNesting(b *testing.B) {
	depths := []int{1000, 2000, 4000}
	layouts := make([]string, len(depths))
	for i, n := range depths {
		layouts[i] = deepLUKS(n)
	}
	load := make([][]time.Duration, len(depths))
	gen := make([][]time.Duration, len(depths))
	for b.Loop() {
		for i, js := range layouts {
			start := time.Now()
			d, err := config.Load([]byte(js), config.LoadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			load[i] = append(load[i], time.Since(start))
			start = time.Now()
			if _, err := Generate(d, Options{}); err != nil {
				b.Fatal(err)
			}
			gen[i] = append(gen[i], time.Since(start))
		}
	}
	for i, n := range depths {
		b.ReportMetric(ms(median(load[i])+median(gen[i])), fmt.Sprintf("depth%d-ms", n))
	}
	last := len(depths) - 1
	growth := func(t [][]time.Duration) float64 {
		return float64(median(t[last])) / float64(median(t[0])) / float64(depths[last]/depths[0])
	}
	b.ReportMetric(growth(load), "load-growth")
	b.ReportMetric(growth(gen), "generate-growth")
}
