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
// growth, t(4000)/t(1000) divided by 4: 1 when compile time is linear in the layout's size.
func BenchmarkDeepNesting(b *testing.B) {
	depths := []int{1000, 2000, 4000}
	layouts := make([]string, len(depths))
	for i, n := range depths {
		layouts[i] = deepLUKS(n)
	}
	times := make([][]time.Duration, len(depths))
	for b.Loop() {
		for i, js := range layouts {
			start := time.Now()
			d, err := config.Load([]byte(js), config.LoadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Generate(d, Options{}); err != nil {
				b.Fatal(err)
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	for i, n := range depths {
		b.ReportMetric(ms(median(times[i])), fmt.Sprintf("depth%d-ms", n))
	}
	b.ReportMetric(float64(median(times[2]))/float64(median(times[0]))/4, "growth")
}
