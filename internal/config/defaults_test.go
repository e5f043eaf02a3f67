package config

import (
	"strings"
	"testing"
)

func TestComputedNames(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"udev escape keeps UTF-8 and escapes bytes as udev does", UdevEscape("Boot data,é^\x01"), `Boot\x20data\x2cé\x5e\x01`},
		{"udev escape of invalid UTF-8", UdevEscape("a\xffb"), `a\xffb`},
		{"short label kept", gptLabel("disk-main-ESP"), "disk-main-ESP"},
		{"long label hashed as disko does", gptLabel("disk-a-very-long-disk-name-for-testing-partition"), "05fea688f6dc0e49ba71c3077f382ed10994"},
		{"bcachefs UUID from the name", nameUUID("mounted_subvolumes_in_multi"), "88d9c058-757d-c06e-0fb7-a612f2db8a7a"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestPartitionDevice(t *testing.T) {
	tests := []struct {
		device string
		n      int
		want   string
	}{
		{"/dev/sda", 1, "/dev/sda1"},
		{"/dev/vdb", 2, "/dev/vdb2"},
		{"/dev/xvda", 3, "/dev/xvda3"},
		{"/dev/nvme0n1", 1, "/dev/nvme0n1p1"},
		{"/dev/mmcblk0", 2, "/dev/mmcblk0p2"},
		{"/dev/disk/by-id/ata-X", 1, "/dev/disk/by-id/ata-X-part1"},
		{"/dev/zvol/pool/vol", 1, "/dev/zvol/pool/vol-part1"},
		{"/dev/md/root", 1, "/dev/md/root1"},
		{"/dev/md/raid1", 1, "/dev/md/raid1p1"},
		{"/dev/md/md0", 1, "/dev/md/md0p1"},
		{"/dev/mapper/vg-lv", 1, "/dev/mapper/vg-lv1"},
		{"/dev/loop3", 5, "/dev/loop3p5"},
		{"/dev/hda", 1, ""},
	}
	for _, tt := range tests {
		got, err := partitionDevice(tt.device, tt.n)
		if got != tt.want || (tt.want == "") != (err != nil) {
			t.Errorf("partitionDevice(%q, %d) = %q, %v; want %q", tt.device, tt.n, got, err, tt.want)
		}
	}
}

// TestNumbering checks partition numbers: GPT by priority then name (a filler last even
// when it is EF02, as in disko), MBR logical partitions from 5.
func TestNumbering(t *testing.T) {
	d, err := Load([]byte(gptDisk(`{"boot":{"size":"100%","type":"EF02"},"a":{"size":"1M"},"bios":{"size":"1M","type":"EF02"},"z":{"size":"1M","priority":1}}`)), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(GPTOrder(d.Disk["main"].Content.(*GPT)), " "); got != "z bios a boot" {
		t.Errorf("GPT order %q, want %q", got, "z bios a boot")
	}
	d, err = Load([]byte(onDisk(`{"type":"table","format":"msdos","partitions":[{},{"part-type":"extended"},{"part-type":"logical"},{"part-type":"logical"}]}`)), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var devices []string
	for _, p := range d.Disk["main"].Content.(*Table).Partitions {
		devices = append(devices, p.Device)
	}
	if got := strings.Join(devices, " "); got != "/dev/sda1 /dev/sda2 /dev/sda5 /dev/sda6" {
		t.Errorf("msdos devices %q", got)
	}
}

// TestCanonicalPositions: positions are handed on in the one spelling the scripts read.
func TestCanonicalPositions(t *testing.T) {
	d, err := Load([]byte(gptDisk(`{"a":{"start":"1MiB","end":"+512m"},"b":{"start":"2048S","end":"+10kb"},"c":{"size":"1G"},"d":{"size":"100%","end":"-1tib"}}`)), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	parts := d.Disk["main"].Content.(*GPT).Partitions
	for key, want := range map[string][2]string{"a": {"1M", "+512M"}, "b": {"2048s", "+10K"}, "c": {"0", "+1G"}, "d": {"0", "-1T"}} {
		if got := [2]string{parts[key].Start, parts[key].End}; got != want {
			t.Errorf("%s: start, end = %q, want %q", key, got, want)
		}
	}
	if got := *parts["b"].Alignment; got != 1 {
		t.Errorf("b: alignment %d, want 1 (a position in sectors)", got)
	}
}
