package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/diskoanywhere/diskoanywhere/internal/testvm"
)

func TestParseDisks(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    []testvm.DiskSpec
		wantErr string
	}{
		{in: "", want: nil},
		{in: "1G,512M", want: []testvm.DiskSpec{{Size: testvm.GiB}, {Size: 512 * testvm.MiB}}},
		{in: "2g,/tmp/x.img", want: []testvm.DiskSpec{{Size: 2 * testvm.GiB}, {Path: "/tmp/x.img"}}},
		{in: "4096", want: []testvm.DiskSpec{{Size: 4096}}},
		{in: "1X", wantErr: `"1X" is not a size`},
		{in: "0", wantErr: `"0" is not a size`},
	} {
		got, err := parseDisks(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("parseDisks(%q): error %v, want one containing %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parseDisks(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--help"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "Example:") {
		t.Errorf("--help: exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"bogus"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "bogus"`) {
		t.Errorf("bogus: exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"run", "--disks", "1X", "--", "true"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "not a size") {
		t.Errorf("run --disks 1X: exit %d, stderr %q", code, errOut.String())
	}
}
