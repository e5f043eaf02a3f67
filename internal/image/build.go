package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/diskoanywhere/diskoanywhere/internal/codegen"
	"github.com/diskoanywhere/diskoanywhere/internal/config"
	"golang.org/x/sys/unix"
)

// newImage is a disk's image file with its partition table written: its temporary name
// (set also on failure, once the file exists, so that the caller removes it) and the
// byte range of each partition, by number.
type newImage struct {
	tmp     string
	regions map[int]region
	err     error
}

// newImages creates the image file of each disk under a temporary name in dir and
// writes its partition table, stopping at the first failure. Build runs it while the
// bootloader is installed: the tables need nothing staged.
func newImages(ctx context.Context, dir string, disks []*diskPlan) []newImage {
	var images []newImage
	for _, disk := range disks {
		img := createImage(ctx, dir, disk)
		images = append(images, img)
		if img.err != nil {
			return images
		}
	}
	return images
}

// createImage creates disk's sparse image file in dir and writes its partition table.
func createImage(ctx context.Context, dir string, disk *diskPlan) newImage {
	f, err := os.CreateTemp(dir, "."+disk.imageName+".*.partial")
	if err != nil {
		return newImage{err: err}
	}
	img := newImage{tmp: f.Name(), regions: map[int]region{0: {0, disk.size}}}
	err = f.Truncate(disk.size)
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err != nil {
		img.err = err
		return img
	}
	switch n := disk.content.(type) {
	case *config.GPT:
		// The regions come from the placement: sfdisk reads a hybrid MBR before the GPT.
		img.regions, img.err = writeGPT(ctx, img.tmp, disk, n)
	case *config.Table:
		args, id := codegen.TableScript(disk.path, n)
		if err := run(ctx, "parted", append([]string{"--script", "--", img.tmp}, args...)...); err != nil {
			img.err = fmt.Errorf("%s: the partitions do not fit in an image of %s, or parted refused them (raise imageSize or pass --size %s=SIZE): %w", disk.path, humanSize(disk.size), disk.name, err)
			return img
		}
		if img.err = run(ctx, "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--disk-id", "--", img.tmp, id); img.err == nil {
			img.regions, img.err = partitionRegions(ctx, img.tmp)
		}
	}
	return img
}

// fillImage builds the volumes of disk into its image file, whose table is written,
// and syncs it.
func fillImage(ctx context.Context, dir string, disk *diskPlan, img newImage, trees stagedTrees, log io.Writer) error {
	f, err := os.OpenFile(img.tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := buildVolumes(ctx, dir, f, img.regions, disk.volumes, trees, log); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// buildVolumes builds the volumes of one disk at the same time, at most one per CPU: each
// writes only its own byte range of the image, and the mkfs tools use one core each, so
// an ESP is made while the root filesystem is filled instead of after it. The first
// failure cancels the others and is the error returned (theirs only say they were killed).
func buildVolumes(ctx context.Context, dir string, img *os.File, regions map[int]region, volumes []volume, trees stagedTrees, log io.Writer) error {
	for _, v := range volumes {
		r, ok := regions[v.partNo]
		if !ok {
			return fmt.Errorf("%s: partition %d is not in the table written", v.path, v.partNo)
		}
		fmt.Fprintf(log, "  %s: %s at byte %d, %d bytes\n", v.path, volumeKind(v.node), r.offset, r.size)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var first error
	var fail sync.Once
	slots := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for _, v := range volumes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			if ctx.Err() != nil {
				return
			}
			if err := buildVolume(ctx, dir, img, regions[v.partNo], v, trees[v.path]); err != nil {
				fail.Do(func() {
					first = fmt.Errorf("%s: %w", v.path, err)
					cancel()
				})
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// region is a byte range of a disk image.
type region struct{ offset, size int64 }

// writeGPT writes the layout's GPT into the image file with one sfdisk run, at the
// sectors the format script's placement gives, then the hybrid MBR as the script makes it.
// It returns the byte range of each partition, by number.
func writeGPT(ctx context.Context, file string, disk *diskPlan, n *config.GPT) (map[int]region, error) {
	specs, err := codegen.GPTSpecs(disk.path, n)
	if err != nil {
		return nil, err
	}
	placed, err := codegen.PlaceGPT(disk.size, specs)
	if err != nil {
		key := config.GPTOrder(n)[len(placed)]
		part := n.Partitions[key]
		return nil, fmt.Errorf("%s (partition %d, %s, start %s, end %s) does not fit in an image of %s (raise imageSize or pass --size %s=SIZE): %w",
			attrPath(disk.path+".partitions", key), len(placed)+1, part.Label, part.Start, part.End, humanSize(disk.size), disk.name, err)
	}
	lines := []string{"label: gpt", "first-lba: 34", fmt.Sprintf("last-lba: %d", disk.size/512-34)}
	var hybrid []codegen.GPTPartitionSpec
	for i, s := range specs {
		line := fmt.Sprintf("start=%d, size=%d, type=%s, name=\"%s\"", placed[i][0], placed[i][1]-placed[i][0]+1, s.TypeGUID, s.Name)
		if s.UUID != "" {
			line += ", uuid=" + s.UUID
		}
		if s.Attrs != "" {
			line += fmt.Sprintf(", attrs=\"%s\"", s.Attrs)
		}
		lines = append(lines, line)
		if s.Hybrid != nil {
			hybrid = append(hybrid, s)
		}
	}
	if err := runInput(ctx, strings.Join(lines, "\n")+"\n", "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "never", "--", file); err != nil {
		return nil, err
	}
	regions := map[int]region{}
	for i, s := range specs {
		regions[s.Number] = region{placed[i][0] * 512, (placed[i][1] - placed[i][0] + 1) * 512}
	}
	if len(hybrid) == 0 {
		return regions, nil
	}
	var nums []string
	for _, h := range hybrid {
		nums = append(nums, strconv.Itoa(h.Number))
	}
	arg := strings.Join(nums, ":")
	if !n.EFIGPTPartitionFirst {
		arg += ":EE"
	}
	if err := run(ctx, "sgdisk", "-h", arg, file); err != nil {
		return nil, err
	}
	for _, h := range hybrid {
		num := strconv.Itoa(h.Number)
		if h.Hybrid.MBRPartitionType != "" {
			if err := run(ctx, "sfdisk", "--quiet", "--no-tell-kernel", "--label-nested", "dos", "--part-type", file, num, h.Hybrid.MBRPartitionType); err != nil {
				return nil, err
			}
		}
		if h.Hybrid.MBRBootableFlag {
			if err := run(ctx, "sfdisk", "--quiet", "--no-tell-kernel", "--label-nested", "dos", "--activate", file, num); err != nil {
				return nil, err
			}
		}
	}
	return regions, nil
}

// partitionRegions reads the table back from the image: byte range by partition number.
func partitionRegions(ctx context.Context, file string) (map[int]region, error) {
	out, err := output(ctx, "sfdisk", "--json", "--", file)
	if err != nil {
		return nil, err
	}
	var t struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Node        string
				Start, Size int64
			}
		}
	}
	if err := json.Unmarshal(out, &t); err != nil {
		return nil, fmt.Errorf("sfdisk --json: %w", err)
	}
	ss := t.PartitionTable.SectorSize
	if ss == 0 {
		ss = 512
	}
	regions := map[int]region{}
	for _, p := range t.PartitionTable.Partitions {
		m := trailingNumber.FindString(p.Node)
		n, err := strconv.Atoi(m)
		if err != nil {
			return nil, fmt.Errorf("sfdisk --json: partition %q has no number", p.Node)
		}
		regions[n] = region{p.Start * ss, p.Size * ss}
	}
	return regions, nil
}

var trailingNumber = regexp.MustCompile(`[0-9]+$`)

// runInput runs a tool with input on its standard input.
func runInput(ctx context.Context, input, name string, args ...string) error {
	_, err := outputInput(ctx, input, name, args...)
	return err
}

// outputInput runs a tool with input on its standard input and returns its standard output.
func outputInput(ctx context.Context, input, name string, args ...string) ([]byte, error) {
	path, err := toolPath(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(input)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s failed (%v): %s", name, err, stderr.String())
	}
	return out, nil
}

// copyAt copies src into dst at offset, skipping src's holes so that dst stays sparse.
// Data is moved with copy_file_range at explicit offsets (in the kernel, shared extents
// where the filesystem can; no file position, so volumes may be copied into one image
// at the same time), or through a buffer where the kernel cannot.
func copyAt(dst, src *os.File, offset int64) error {
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	for pos := int64(0); pos < size; {
		start, err := unix.Seek(int(src.Fd()), pos, unix.SEEK_DATA)
		if err != nil {
			break // ENXIO: no data after pos
		}
		end, err := unix.Seek(int(src.Fd()), start, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		if err := copyRange(dst, src, start, offset+start, end-start); err != nil {
			return err
		}
		pos = end
	}
	return nil
}

// copyRange copies n bytes of src at from into dst at to.
func copyRange(dst, src *os.File, from, to, n int64) error {
	for n > 0 {
		done, err := unix.CopyFileRange(int(src.Fd()), &from, int(dst.Fd()), &to, int(n), 0)
		if err != nil || done == 0 {
			// EXDEV, ENOSYS, EINVAL (an older kernel or a filesystem without it): copy
			// the rest through a buffer.
			_, err := io.Copy(io.NewOffsetWriter(dst, to), io.NewSectionReader(src, from, n))
			return err
		}
		n -= int64(done)
	}
	return nil
}

// scratchFile makes an empty file of size bytes in dir, for one filesystem.
func scratchFile(dir string, size int64) (string, error) {
	f, err := os.CreateTemp(dir, ".volume.*.partial")
	if err != nil {
		return "", err
	}
	name := f.Name()
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(name)
		return "", err
	}
	return name, f.Close()
}

// buildVolume makes the filesystem or swap area of v in a file of its own, filled from
// tree when that is not "", and copies it into the image at r. A failure is checked
// for a full output directory before the scratch files go (withSpaceHint).
func buildVolume(ctx context.Context, dir string, img *os.File, r region, v volume, tree string) (err error) {
	var scratch []string
	defer func() {
		err = withSpaceHint(dir, err)
		for _, s := range scratch {
			removeTree(s)
		}
	}()
	if args, ok := ext4InPlace(v, r, tree); ok {
		// One write instead of three (scratch file, copy): mke2fs writes at the offset.
		fs := v.node.(*config.Filesystem)
		tool := "mkfs." + fs.Format
		args = append(args, img.Name(), strconv.FormatInt(r.size/1024, 10)+"k")
		if tree == "" {
			return run(ctx, tool, args...)
		}
		if !canFillExt4(fs) {
			return runAsRoot(ctx, tool, args...)
		}
		aside, err := os.MkdirTemp(dir, ".data.*.partial")
		if err != nil {
			return err
		}
		scratch = append(scratch, aside)
		large, err := hollowLargeFiles(tree, aside)
		if err != nil {
			return err
		}
		if err := runAsRoot(ctx, tool, args...); err != nil {
			return err
		}
		return fillLargeFiles(ctx, img, r.offset, large)
	}
	file, err := scratchFile(dir, r.size)
	if err != nil {
		return err
	}
	scratch = append(scratch, file)
	if err := mkfs(ctx, v, file, tree); err != nil {
		return err
	}
	src, err := os.Open(file)
	if err != nil {
		return err
	}
	defer src.Close()
	return copyAt(img, src, r.offset)
}

// volumeKind names what a volume is, for progress lines.
func volumeKind(n config.Node) string {
	switch n := n.(type) {
	case *config.Filesystem:
		return n.Format
	case *config.Swap:
		return "swap"
	}
	return n.Kind()
}

// stagedTrees are directories of files to put into filesystems, by volume option path.
type stagedTrees map[string]string

func (s stagedTrees) remove() {
	for _, dir := range s {
		removeTree(dir)
	}
}

// addMounted gives every mounted volume that can be filled a tree (empty when it has
// none yet), so that what a bootloader install writes under its mount point has a place.
func (s stagedTrees) addMounted(dir string, disks []*diskPlan) error {
	for _, d := range disks {
		for _, v := range d.volumes {
			if v.mountpoint == "" || !canPopulate(v.node) || s[v.path] != "" {
				continue
			}
			tree, err := os.MkdirTemp(dir, ".tree.*.partial")
			if err != nil {
				return err
			}
			s[v.path] = tree
		}
	}
	return nil
}

// stageFiles copies each file into a staging tree of the filesystem mounted where it
// goes (the volume whose mount point is the longest prefix of its destination).
func stageFiles(dir string, disks []*diskPlan, files []File) (trees stagedTrees, err error) {
	trees = stagedTrees{}
	defer func() {
		if err != nil {
			trees.remove()
		}
	}()
	for _, file := range files {
		if !filepath.IsAbs(file.Dest) {
			return trees, fmt.Errorf("file destination %q is not an absolute path", file.Dest)
		}
		if _, err := os.Lstat(file.Source); err != nil {
			return trees, err
		}
		var best *volume
		for _, d := range disks {
			for i, v := range d.volumes {
				mp := v.mountpoint
				if mp == "" || !within(file.Dest, mp) {
					continue
				}
				if best == nil || len(mp) > len(best.mountpoint) {
					best = &d.volumes[i]
				}
			}
		}
		if best == nil {
			return trees, fmt.Errorf("no filesystem of the layout is mounted where %s goes", file.Dest)
		}
		if !canPopulate(best.node) {
			return trees, fmt.Errorf("%s goes into %s (%s), which cannot be filled without mounting it", file.Dest, best.path, volumeKind(best.node))
		}
		tree, ok := trees[best.path]
		if !ok {
			if tree, err = os.MkdirTemp(dir, ".tree.*.partial"); err != nil {
				return trees, err
			}
			trees[best.path] = tree
		}
		rel, _ := filepath.Rel(best.mountpoint, file.Dest)
		target := filepath.Join(tree, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return trees, err
		}
		if isSystemStaging(dir, file.Source) && os.Rename(file.Source, target) == nil {
			continue
		}
		// Hard links when the source is on the same filesystem (nothing is copied twice),
		// else a copy.
		if run(context.Background(), "cp", "-a", "--link", "-T", "--", file.Source, target) != nil {
			removeTree(target)
			if err := run(context.Background(), "cp", "-a", "--reflink=auto", "-T", "--", file.Source, target); err != nil {
				return trees, err
			}
		}
	}
	return trees, nil
}

// removeTree removes a staged tree. The tree may hold read-only directories (a store
// path's, which cp -a keeps read-only) and overlayfs' mode-0 work directories, which
// their owner can remove only after making them writable again; root needs no such care.
func removeTree(path string) error {
	if os.Geteuid() != 0 {
		makeWritable(path)
	}
	return os.RemoveAll(path)
}

// makeWritable gives the owner full access to every directory under path.
func makeWritable(path string) {
	fi, err := os.Lstat(path)
	if err != nil || !fi.IsDir() {
		return
	}
	if fi.Mode().Perm()&0o700 != 0o700 {
		os.Chmod(path, fi.Mode().Perm()|0o700)
	}
	entries, _ := os.ReadDir(path)
	for _, e := range entries {
		if e.IsDir() {
			makeWritable(filepath.Join(path, e.Name()))
		}
	}
}

// within reports whether path is mp or below it.
func within(path, mp string) bool {
	path, mp = filepath.Clean(path), filepath.Clean(mp)
	return path == mp || mp == "/" || strings.HasPrefix(path, mp+"/")
}

// humanSize writes a byte count the way imageSize is written, when it can (2G, 512M).
func humanSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"P", 1 << 50}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.suffix)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
