package progress

import (
	"fmt"
	"strings"
	"time"
)

// Transfer is a snapshot of a copy or an upload, rendered by String as the
// status a user reads: what is done of how much, the rate and the time left.
type Transfer struct {
	Bytes, TotalBytes int64 // TotalBytes 0: unknown
	Paths, TotalPaths int   // TotalPaths 0: not a copy of store paths
	Elapsed           time.Duration
}

// Rate is the mean rate so far in bytes per second; 0 before there is one.
func (t Transfer) Rate() float64 {
	if t.Elapsed <= 0 || t.Bytes <= 0 {
		return 0
	}
	return float64(t.Bytes) / t.Elapsed.Seconds()
}

// Left is the time the rest takes at the mean rate so far; 0 when unknown.
func (t Transfer) Left() time.Duration {
	r := t.Rate()
	if r <= 0 || t.TotalBytes <= t.Bytes {
		return 0
	}
	return time.Duration(float64(t.TotalBytes-t.Bytes) / r * float64(time.Second))
}

// String reads e.g. "12/340 paths, 120.0 MiB of 1.2 GiB (10%), 85.3 MB/s, 13s left".
func (t Transfer) String() string {
	var parts []string
	if t.TotalPaths > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d paths", t.Paths, t.TotalPaths))
	}
	switch {
	case t.TotalBytes > 0:
		parts = append(parts, fmt.Sprintf("%s of %s (%d%%)", Bytes(t.Bytes), Bytes(t.TotalBytes), t.Bytes*100/t.TotalBytes))
	default:
		parts = append(parts, Bytes(t.Bytes))
	}
	if r := t.Rate(); r > 0 {
		parts = append(parts, fmt.Sprintf("%.1f MB/s", r/1e6))
	}
	if left := t.Left(); left > 0 {
		parts = append(parts, Seconds(left)+" left")
	}
	return strings.Join(parts, ", ")
}

// Data is the snapshot as JSON event fields.
func (t Transfer) Data() map[string]any {
	d := map[string]any{"bytes_done": t.Bytes, "bytes_total": t.TotalBytes}
	if t.TotalPaths > 0 {
		d["paths_done"], d["paths_total"] = t.Paths, t.TotalPaths
	}
	if r := t.Rate(); r > 0 {
		d["bytes_per_s"] = int64(r)
	}
	if left := t.Left(); left > 0 {
		d["seconds_left"] = int64(left.Seconds())
	}
	return d
}

// Bytes renders a size in binary units: "512 B", "1.5 KiB", "3.2 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Seconds renders a duration to the second: "35s", "3m5s"; "<1s" below.
func Seconds(d time.Duration) string {
	if d < time.Second {
		return "<1s"
	}
	return d.Round(time.Second).String()
}

// Duration renders a duration for a status: "850ms", "4.2s", "3m5s".
func Duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
