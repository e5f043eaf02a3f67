package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// deepLUKS returns a layout whose one partition holds depth LUKS containers, each inside
// the one before, around an ext4 filesystem: the deepest nesting a layout can have.
func deepLUKS(depth int) []byte {
	var b strings.Builder
	b.WriteString(`{"disk":{"main":{"device":"/dev/vda","content":{"type":"gpt","partitions":{"root":{"size":"100%","content":`)
	for i := range depth {
		fmt.Fprintf(&b, `{"type":"luks","name":"crypt%d","passwordFile":"/tmp/key","content":`, i)
	}
	b.WriteString(`{"type":"filesystem","format":"ext4","mountpoint":"/"}`)
	b.WriteString(strings.Repeat("}", depth))
	b.WriteString(`}}}}}}`)
	return []byte(b.String())
}

// BenchmarkLoadDeep loads LUKS nestings 1000, 2000 and 4000 deep and reports how the time
// grows each time the depth doubles (growth-2x, growth-4x: 2 and 4 when Load is linear).
// Each depth's time is the fastest of a few runs, to keep a loaded machine's noise out.
func BenchmarkLoadDeep(b *testing.B) {
	depths := []int{1000, 2000, 4000}
	layouts := make([][]byte, len(depths))
	for i, d := range depths {
		layouts[i] = deepLUKS(d)
	}
	fastest := make([]time.Duration, len(depths))
	for b.Loop() {
		for i, data := range layouts {
			start := time.Now()
			if _, err := Load(data, LoadOptions{}); err != nil {
				b.Fatal(err)
			}
			if took := time.Since(start); fastest[i] == 0 || took < fastest[i] {
				fastest[i] = took
			}
		}
	}
	b.ReportMetric(float64(fastest[0].Microseconds()), "us-1000")
	b.ReportMetric(float64(fastest[2].Microseconds()), "us-4000")
	b.ReportMetric(float64(fastest[1])/float64(fastest[0]), "growth-2x")
	b.ReportMetric(float64(fastest[2])/float64(fastest[0]), "growth-4x")
}
