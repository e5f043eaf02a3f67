package vmtest

import (
	"slices"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

func TestClassOf(t *testing.T) {
	M := testvm.MiB
	for _, tc := range []struct{ sizes, want []int64 }{
		{[]int64{128 * M}, []int64{256 * M}},
		{[]int64{256 * M, 256 * M}, []int64{256 * M, 256 * M}},
		{[]int64{768 * M, 256 * M}, []int64{768 * M, 768 * M}},
		{[]int64{1280 * M}, []int64{2048 * M}},
		{[]int64{4096 * M}, []int64{4096 * M}},
	} {
		if got := classOf(tc.sizes); !slices.Equal(got, tc.want) {
			t.Errorf("classOf(%v) = %v, want %v", tc.sizes, got, tc.want)
		}
	}
}
