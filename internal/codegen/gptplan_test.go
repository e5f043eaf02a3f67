package codegen

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestGPTPlacementMatchesSgdisk checks disko_gpt_place (runtime.sh) against sgdisk itself:
// each case is partitioned the way disko does it, one `sgdisk --align-end --new` call per
// partition on a sparse file, and the sectors sgdisk chose must be the ones the runtime
// computes for the single sfdisk write. Only scratch files are touched.
func TestGPTPlacementMatchesSgdisk(t *testing.T) {
	if _, err := exec.LookPath("sgdisk"); err != nil {
		t.Skip("sgdisk is not installed (Debian: gdisk)")
	}
	cases := []struct {
		name string
		size string
		// alignment per partition as disko derives it: 1 when start or end is in sectors
		parts []gptCasePart
	}{
		{"simple-efi", "1G", []gptCasePart{{"0", "+500M"}, {"0", "-0"}}},
		{"explicit-start-end", "1G", []gptCasePart{{"1M", "128M"}, {"0", "-0"}}},
		{"negative-end", "2G", []gptCasePart{{"0", "+500M"}, {"0", "+10M"}, {"0", "-1G"}, {"0", "-0"}}},
		{"bios-boot-first", "1G", []gptCasePart{{"0", "+1M"}, {"0", "+512M"}, {"0", "-0"}}},
		{"unaligned-sizes", "1G", []gptCasePart{{"0", "+1000K"}, {"0", "+1500K"}, {"0", "-10M"}, {"0", "+3000"}}},
		{"sectors", "1G", []gptCasePart{{"34s", "2047s"}, {"0", "+1M"}, {"0", "-0"}}},
		{"odd-start", "1G", []gptCasePart{{"2049", "+1M"}, {"0", "+1M"}, {"100M", "+1M"}, {"0", "+1M"}}},
		{"gap-then-largest", "1G", []gptCasePart{{"600M", "+100M"}, {"0", "+100M"}, {"0", "-0"}}},
	}
	if testing.Short() {
		t.Skip("sgdisk sleeps a second per call; skipped with -short")
	}
	// sgdisk spends its time asleep, so every case runs at once rather than at most
	// GOMAXPROCS of them (t.Parallel).
	var wg sync.WaitGroup
	errs := make([]string, len(cases))
	for i, c := range cases {
		wg.Go(func() { errs[i] = c.name + ": " + compareWithSgdisk(c.size, c.parts) })
	}
	wg.Wait()
	for _, e := range errs {
		if !strings.HasSuffix(e, ": ") {
			t.Error(e)
		}
	}
}

type gptCasePart struct{ start, end string }

// compareWithSgdisk returns "" when the runtime places parts like sgdisk does, else why not.
func compareWithSgdisk(size string, parts []gptCasePart) string {
	dir, err := os.MkdirTemp("", "gptplan")
	if err != nil {
		return err.Error()
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "disk.img")
	if err := exec.Command("truncate", "-s", size, img).Run(); err != nil {
		return err.Error()
	}
	if out, err := exec.Command("sgdisk", "--clear", img).CombinedOutput(); err != nil {
		return fmt.Sprintf("sgdisk --clear: %v\n%s", err, out)
	}
	var specs []string
	for i, p := range parts {
		align := 0
		if strings.HasSuffix(p.start, "s") || strings.HasSuffix(p.end, "s") {
			align = 1
		}
		args := []string{"--align-end"}
		if align != 0 {
			args = append(args, "--set-alignment="+strconv.Itoa(align))
		}
		args = append(args, fmt.Sprintf("--new=%d:%s:%s", i+1, p.start, p.end), img)
		if out, err := exec.Command("sgdisk", args...).CombinedOutput(); err != nil {
			return fmt.Sprintf("sgdisk %v: %v\n%s", args, err, out)
		}
		start, err := posSpec(p.start)
		if err != nil {
			return err.Error()
		}
		end, err := posSpec(p.end)
		if err != nil {
			return err.Error()
		}
		specs = append(specs, fmt.Sprintf("%s %s %d", start, end, align))
	}
	out, err := exec.Command("sfdisk", "--json", img).Output()
	if err != nil {
		return fmt.Sprintf("sfdisk --json: %v", err)
	}
	var table struct {
		PartitionTable struct {
			Partitions []struct{ Start, Size int64 }
		}
	}
	if err := json.Unmarshal(out, &table); err != nil {
		return err.Error()
	}
	var want []string
	for _, p := range table.PartitionTable.Partitions {
		want = append(want, fmt.Sprintf("%d %d", p.Start, p.Start+p.Size-1))
	}
	fi, err := os.Stat(img)
	if err != nil {
		return err.Error()
	}
	got, err := placeInShell(fi.Size(), specs)
	if err != nil {
		return err.Error()
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		return fmt.Sprintf("placement differs from sgdisk's\nsgdisk:  %q\nruntime: %q", want, got)
	}
	return ""
}

// placeInShell runs disko_gpt_place for each "START END ALIGN" spec on a disk of the
// given size (512-byte sectors) and returns "FIRST LAST" per partition.
func placeInShell(bytes int64, specs []string) ([]string, error) {
	script := runtime + fmt.Sprintf(`
disko_ss=512
disko_first=34
disko_last=%d
for spec in "$@"; do
  read -r s e a <<<"$spec"
  disko_gpt_place "$s" "$e" "$a"
  printf '%%s\n' "$disko_r"
done
`, bytes/512-34)
	out, err := exec.Command("bash", append([]string{"-euo", "pipefail", "-c", script, "place"}, specs...)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("runtime: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), nil
}
