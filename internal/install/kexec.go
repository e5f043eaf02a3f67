package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/diskoanywhere/diskoanywhere/internal/facts"
	"github.com/diskoanywhere/diskoanywhere/internal/progress"
	"github.com/diskoanywhere/diskoanywhere/internal/remote"
	"github.com/diskoanywhere/diskoanywhere/internal/shell"
)

// The kexec phase boots a running Linux into a NixOS installer without
// touching its disks: the installer tarball of nix-community/nixos-images
// (kexec/{run,kexec,bzImage,initrd,ip}) is put on the target, extracted, and
// its kexec/run loads the installer and kexecs into it 6 s later. The
// installer carries the target's host keys over, so the machine that comes
// back must present the very key seen before; any other key is refused (and
// nixos-anywhere, which turns host key checking off, would not notice).

// DefaultKexecRelease is the nixos-images release nixos-anywhere installs from.
const DefaultKexecRelease = "nixos-25.11"

// DefaultKexecURL is the tarball nixos-anywhere uses for an architecture
// (`uname -m`); only x86_64 and aarch64 have one.
func DefaultKexecURL(arch string) (string, error) {
	switch arch {
	case "x86_64", "aarch64":
		return "https://github.com/nix-community/nixos-images/releases/download/" + DefaultKexecRelease +
			"/nixos-kexec-installer-noninteractive-" + arch + "-linux.tar.gz", nil
	}
	return "", fmt.Errorf("no default kexec image for %s (nixos-images builds x86_64 and aarch64 only); "+
		"pass --kexec with an installer tarball for this architecture (see nixos-anywhere's howtos/custom-kexec)", arch)
}

// standardKexecSize is about the size of the default x86_64 tarball, used
// for the memory estimate when a URL's size is not known in advance.
const standardKexecSize = 350 << 20

// KexecMemoryNeeded is the RAM (MemTotal) a target needs to kexec into a
// tarball of size bytes: nixos-anywhere's rule of thumb, 1.5 GB for its
// 350 MB image and never less than the 1 GB nixos-images asks for. The RAM
// holds the tarball, its unpacked kernel and initrd, kexec's copy of them
// while the old system still runs, then the unpacked installer and the
// store paths copied into it. "1 GB" is what such a machine reports as
// MemTotal after the kernel's own reservations: 900 MiB.
func KexecMemoryNeeded(size int64) uint64 {
	const floor = 900 << 20
	need := uint64(3*size) + 384<<20
	return max(need, floor)
}

// refusal is an error found before anything on the target changed: running
// again does not help, so no resume hint is given.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

// kexecSource is where the tarball comes from.
type kexecSource struct {
	url   string // http(s)/ftp URL, or
	local string // a local file
	size  int64  // bytes; 0 when unknown
	dflt  bool   // the default URL
}

func (s kexecSource) String() string {
	if s.local != "" {
		return s.local
	}
	return s.url
}

// resolveKexec finds the tarball for the target: --kexec (a local file or
// a URL), or the default for its architecture.
func (r *run) resolveKexec(ctx context.Context, f *facts.Facts) (kexecSource, error) {
	if r.kexecSrc != nil {
		return *r.kexecSrc, nil
	}
	src, err := r.findKexec(ctx, f)
	if err == nil {
		r.kexecSrc = &src
	}
	return src, err
}

func (r *run) findKexec(ctx context.Context, f *facts.Facts) (kexecSource, error) {
	k := r.o.Kexec
	if k == "" {
		u, err := DefaultKexecURL(f.Arch)
		if err != nil {
			return kexecSource{}, err
		}
		return kexecSource{url: u, size: standardKexecSize, dflt: true}, nil
	}
	if isURL(k) {
		s := kexecSource{url: k}
		s.size = contentLength(ctx, k)
		return s, nil
	}
	st, err := os.Stat(k)
	if err != nil {
		return kexecSource{}, fmt.Errorf("--kexec %s: %w (a local tarball or an http(s) URL)", k, err)
	}
	if st.IsDir() {
		return kexecSource{}, fmt.Errorf("--kexec %s is a directory; pass the tarball (kexec/{run,kexec,bzImage,initrd,ip} inside)", k)
	}
	return kexecSource{local: k, size: st.Size()}, nil
}

func isURL(s string) bool {
	for _, p := range []string{"http://", "https://", "ftp://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// contentLength asks for a URL's size with a short HEAD request from here;
// 0 when it cannot be known (offline, no Content-Length).
func contentLength(ctx context.Context, u string) int64 {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 || resp.ContentLength < 0 {
		return 0
	}
	return resp.ContentLength
}

// kexecProblems are the reasons a kexec would fail or hang the machine,
// found before anything is changed; each says what to do instead.
func kexecProblems(f *facts.Facts, src kexecSource) []string {
	var p []string
	if f.Container != "" {
		p = append(p, fmt.Sprintf("the target runs in a %s container, which cannot kexec; boot the machine into a NixOS installer (ISO or netboot) instead", f.Container))
	}
	if !f.Kexec.Supported {
		p = append(p, "the target's kernel has no kexec support (/sys/kernel/kexec_loaded is missing); boot a NixOS installer image instead")
	}
	if l := f.Kexec.Lockdown; l != "" && l != "none" {
		p = append(p, fmt.Sprintf("the target's kernel is locked down (%s, usually Secure Boot): it only kexecs signed kernels; turn Secure Boot off or boot a NixOS installer image", l))
	}
	if f.MemTotal > 0 {
		if need := KexecMemoryNeeded(src.size); f.MemTotal < need {
			size := "a tarball of unknown size"
			if src.size > 0 {
				size = "a " + progress.Bytes(src.size) + " tarball"
			}
			p = append(p, fmt.Sprintf("the target has %s of RAM (MemTotal), but kexec into %s needs %s (swap does not count); "+
				"give it more memory, or boot a NixOS installer image instead", progress.Bytes(int64(f.MemTotal)), size, progress.Bytes(int64(need))))
		}
	}
	var missing []string
	for _, t := range []string{"tar", "cpio", "gzip"} {
		if f.Tools[t] == "" {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		p = append(p, fmt.Sprintf("the target lacks %s, which unpacking the installer and kexec/run need; install them first", strings.Join(missing, ", ")))
	}
	return p
}

// planKexec says what the kexec phase will do, or "refused: " and why.
func (r *run) planKexec(ctx context.Context) string {
	src, err := r.resolveKexec(ctx, r.facts)
	if err != nil {
		return "refused: " + err.Error()
	}
	if p := kexecProblems(r.facts, src); len(p) > 0 {
		return "refused: " + strings.Join(p, "; ")
	}
	what := "boot into the installer from " + src.String()
	if src.size > 0 {
		what += fmt.Sprintf(" (%s; needs %s of RAM, the target has %s)", progress.Bytes(src.size),
			progress.Bytes(int64(KexecMemoryNeeded(src.size))), progress.Bytes(int64(r.facts.MemTotal)))
	}
	if r.client.Login().Method != remote.AuthPublicKey {
		what += fmt.Sprintf("; first a key is added to %s's ~/.ssh/authorized_keys, since the installer does not take the password", r.client.Config().User)
	}
	return what
}

// kexec boots the target into the installer. It is skipped on a target
// that already runs one (as nixos-anywhere does) unless --force-kexec.
func (r *run) kexec(ctx context.Context) error {
	if r.facts.IsInstaller && !r.o.ForceKexec {
		r.rep.Skipped(string(PhaseKexec), "", "the target already runs a NixOS installer")
		return errSkipped
	}
	phase := string(PhaseKexec)
	r.rep.Phase(phase, "boot the target into the NixOS installer")
	src, err := r.resolveKexec(ctx, r.facts)
	if err != nil {
		return err
	}
	if p := kexecProblems(r.facts, src); len(p) > 0 {
		return refusal{fmt.Errorf("refusing to kexec %s:\n  - %s", r.target, strings.Join(p, "\n  - "))}
	}
	if disabled, _ := r.rootOutput(ctx, "cat /proc/sys/kernel/kexec_load_disabled 2>/dev/null"); strings.TrimSpace(disabled) == "1" {
		return refusal{fmt.Errorf("refusing to kexec %s: kexec is switched off until the next boot (kernel.kexec_load_disabled = 1); reboot it, or boot a NixOS installer image", r.target)}
	}
	if err := r.authorizeInstallerKey(ctx); err != nil {
		return err
	}

	home, err := r.rootOutput(ctx, `printf '%s' "${HOME:-/root}"`)
	if err != nil {
		return err
	}
	dir := path.Join(strings.TrimSpace(home), "kexec")
	tarball, err := r.fetchKexec(ctx, src, dir)
	if err != nil {
		return err
	}
	if err := r.runKexec(ctx, dir, tarball); err != nil {
		return err
	}
	return r.awaitInstaller(ctx)
}

// fetchKexec puts the tarball into dir on the target and returns its path:
// a local file is uploaded; a URL is downloaded by the target (curl or
// wget), or here and streamed up when the target has neither or cannot
// reach it.
func (r *run) fetchKexec(ctx context.Context, src kexecSource, dir string) (string, error) {
	phase := string(PhaseKexec)
	dst := path.Join(dir, "installer.tar")
	if src.local != "" {
		s := r.rep.Step(phase, "upload "+src.local)
		f, err := os.Open(src.local)
		if err != nil {
			return "", s.Done(err)
		}
		defer f.Close()
		start := time.Now()
		err = r.root.Upload(ctx, newUploadProgress(f, src.size, s), dst, 0o600, -1, -1)
		if err == nil {
			s.Detail(rate(src.size, time.Since(start)), map[string]any{"bytes": src.size})
		}
		return dst, s.Done(err)
	}

	u := src.url
	if r.facts.IPv6Only() && strings.HasPrefix(u, "https://github.com/") {
		// As nixos-anywhere: GitHub has no IPv6; Numtide's proxy has.
		u = "https://gh-v6.com/" + strings.TrimPrefix(u, "https://github.com/")
	}
	var get string
	switch {
	case r.facts.Tools["curl"] != "":
		get = "curl --fail -sS -L -o \"$f\" " + shell.Quote(u)
	case r.facts.Tools["wget"] != "":
		get = "wget -q -O \"$f\" " + shell.Quote(u)
	}
	if get != "" {
		s := r.rep.Step(phase, "download "+u+" on the target")
		start := time.Now()
		stopWatching := r.watchDownload(ctx, s, dst, src)
		out, err := r.root.Output(ctx, fmt.Sprintf("set -e\nf=%s\nmkdir -p %s\n%s\nwc -c <\"$f\"", shell.Quote(dst), shell.Quote(dir), get))
		stopWatching()
		if err == nil {
			var n int64
			fmt.Sscan(string(out), &n)
			s.Detail(rate(n, time.Since(start)), map[string]any{"bytes": n})
			return dst, s.Done(nil)
		}
		s.Done(nil)
		r.rep.Warn(phase, fmt.Sprintf("the target could not download %s (%v); downloading it here and streaming it up", u, err))
	} else {
		r.rep.Info(phase, "the target has neither curl nor wget: downloading the installer here and streaming it up", nil)
	}
	s := r.rep.Step(phase, "download "+src.url+" here and upload it")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.url, nil)
	if err != nil {
		return "", s.Done(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", s.Done(fmt.Errorf("downloading %s: %w", src.url, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", s.Done(fmt.Errorf("downloading %s: %s", src.url, resp.Status))
	}
	cr := newUploadProgress(resp.Body, max(resp.ContentLength, 0), s)
	start := time.Now()
	err = r.root.Upload(ctx, cr, dst, 0o600, -1, -1)
	if err == nil {
		s.Detail(rate(cr.n, time.Since(start)), map[string]any{"bytes": cr.n})
	}
	return dst, s.Done(err)
}

// uploadProgress counts what an upload has read and shows it on its step
// (bytes of the total, rate, time left) about every 200 ms.
type uploadProgress struct {
	r       io.Reader
	s       *Step
	n       int64
	total   int64 // 0: unknown
	start   time.Time
	shownAt time.Time
}

func newUploadProgress(r io.Reader, total int64, s *Step) *uploadProgress {
	return &uploadProgress{r: r, s: s, total: total, start: time.Now()}
}

func (u *uploadProgress) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	u.n += int64(n)
	if now := time.Now(); now.Sub(u.shownAt) >= 200*time.Millisecond || err != nil {
		u.shownAt = now
		t := progress.Transfer{Bytes: u.n, TotalBytes: u.total, Elapsed: now.Sub(u.start)}
		u.s.Progress(t.String(), t.Data())
	}
	return n, err
}

// watchDownload shows how much of the tarball the target's curl or wget
// has written to dst, every 2 s, until the returned stop is called. The
// total is known only for a --kexec URL that answered a HEAD request.
func (r *run) watchDownload(ctx context.Context, s *Step, dst string, src kexecSource) (stop func()) {
	total := src.size
	if src.dflt {
		total = 0 // an estimate only
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
			out, err := r.root.Output(ctx, "stat -c %s "+shell.Quote(dst)+" 2>/dev/null || echo 0")
			var n int64
			if err != nil || ctx.Err() != nil {
				continue
			}
			fmt.Sscan(string(out), &n)
			t := progress.Transfer{Bytes: n, TotalBytes: total, Elapsed: time.Since(start)}
			s.Progress(t.String()+" downloaded", t.Data())
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

func rate(n int64, d time.Duration) string {
	if n <= 0 {
		return ""
	}
	s := progress.Bytes(n)
	if secs := d.Seconds(); secs > 0 {
		s += fmt.Sprintf(" at %.0f MB/s", float64(n)/1e6/secs)
	}
	return s
}

// kexecMarker is what kexec/run prints once the installer is loaded;
// nixos-anywhere waits for the same words.
const kexecMarker = "machine will boot into nixos"

// runKexec extracts the tarball (its compression found from its first
// bytes, not its name) and runs kexec/run in a session of its own, so the
// kexec it schedules survives this SSH session.
func (r *run) runKexec(ctx context.Context, dir, tarball string) error {
	phase := string(PhaseKexec)
	script := kexecScript(dir, tarball, r.o.KexecExtraFlags)
	s := r.rep.Step(phase, "unpack the installer and load it (kexec/run)")
	var out bytes.Buffer
	w := newOutputWriter(r.stderr, "  "+phase+"| ")
	err := r.root.Run(ctx, script, nil, io.MultiWriter(w, &out), w)
	w.Flush()
	if err == nil && !strings.Contains(out.String(), kexecMarker) {
		err = fmt.Errorf("kexec/run did not say %q: the installer was not loaded (its output is above; the log is %s/anywhere-kexec.log on the target)", kexecMarker, dir)
	}
	return s.Done(err)
}

// kexecScript unpacks the tarball in dir and runs kexec/run as
// nixos-anywhere does (TMPDIR in dir, setsid --wait where it exists, the
// output kept in dir/anywhere-kexec.log).
func kexecScript(dir, tarball, flags string) string {
	return fmt.Sprintf(`set -eu
dir=%[1]s
f=%[2]s
flags=%[3]s
cd "$dir"
rm -rf kexec
case $(od -An -N6 -tx1 "$f" | tr -d ' \n') in
1f8b*) unpack="gzip -dc" ;;
fd377a585a00) unpack="xz -dc" ;;
28b52ffd*) unpack="zstd -dc" ;;
*) unpack="cat" ;;
esac
if ! command -v "${unpack%% *}" >/dev/null 2>&1; then
  echo "the tarball is ${unpack%% *}-compressed, but the target has no ${unpack%% *}; install it, or repack the tarball with gzip" >&2
  exit 3
fi
$unpack <"$f" | tar -x
rm -f "$f"
if [ ! -x kexec/run ]; then
  echo "the tarball has no executable kexec/run: not a nixos-images kexec installer (kexec/{run,kexec,bzImage,initrd,ip})" >&2
  exit 3
fi
echo "unpacked: $(du -sh kexec | cut -f1)"
setsid=""
if setsid --wait true 2>/dev/null; then setsid="setsid --wait"; fi
TMPDIR="$dir" $setsid "$dir/kexec/run" --kexec-extra-flags "$flags" 2>&1 | tee "$dir/anywhere-kexec.log"
`, shell.Quote(dir), shell.Quote(tarball), shell.Quote(flags))
}

// kexecDownTimeout bounds the wait for the old system to go away after
// kexec/run: the kexec happens 6 s after run returns, so an old system
// still answering after minutes will not go (the kernel refused the
// installer). --kexec-timeout shortens it too.
const kexecDownTimeout = 3 * time.Minute

// awaitInstaller waits for the old system to go away and the installer to
// answer (as root, on --post-kexec-ssh-port if given) with the host key
// seen before the kexec, then checks that it is a new boot of an installer
// and continues the run with it.
func (r *run) awaitInstaller(ctx context.Context) error {
	phase := string(PhaseKexec)
	oldKey := r.hostKey
	oldBoot := r.bootID
	cfg := r.client.Config()
	r.workdir = "" // it was on the old system
	r.client.Close()

	after := r.target
	after.User = "root" // the installer lets root in with the carried keys
	if r.o.PostKexecSSHPort != 0 {
		after.Port = r.o.PostKexecSSHPort
	}
	opts := r.o.SSH
	opts.ExpectHostKey = oldKey

	s := r.rep.Step(phase, "wait for "+cfg.Addr()+" to go down")
	downTimeout := min(kexecDownTimeout, r.o.kexecTimeout())
	down, cancel := context.WithTimeout(ctx, downTimeout)
	defer cancel()
	seen, newKey, err := waitRestart(down, r.target, r.o.SSH, oldKey, oldBoot, newWatch(s))
	switch {
	case err == nil && seen == restartNewBoot:
		s.Detail("the target already answers as a new boot", nil)
	case err == nil && seen == restartOtherKey:
		// The installer came up before a try found the old system gone.
		err = errors.New(hostKeyChanged(newKey, oldKey))
	}
	if err := s.Done(err); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: the old system still answers %s after kexec/run scheduled the kexec; "+
				"the kernel may have refused the installer (see `dmesg` and ~/kexec/anywhere-kexec.log on the target)", err, downTimeout)
		}
		return err
	}

	where := after.String()
	if c, err := remote.Resolve(after, opts); err == nil {
		where = c.Destination()
	}
	s = r.rep.Step(phase, "wait for the installer on "+where)
	upTimeout := r.o.kexecTimeout()
	wctx, cancelUp := context.WithTimeout(ctx, upTimeout)
	defer cancelUp()
	w := newWatch(s)
	var up *remote.Client
	for {
		up, err = remote.WaitUp(wctx, after, opts, w.failed)
		if err != nil {
			break
		}
		boot, berr := bootIDOf(wctx, up.User())
		if berr == nil && boot != "" && boot != oldBoot {
			break
		}
		// Only a boot id read and different proves the installer: a login that
		// cannot read it may be the old system going down.
		up.Close()
		if berr != nil {
			w.got("logged in, but reading the boot id failed", berr)
		} else {
			w.got(stillUp, nil)
		}
		if err = pause(wctx, 2*time.Second); err != nil {
			break
		}
	}
	if err := s.Done(err); err != nil {
		if ctx.Err() == nil && wctx.Err() != nil {
			return fmt.Errorf("the installer did not answer SSH on %s within %s (%s).\n"+
				"Check the machine's console: did the installer's kernel boot, or did it panic or run out of memory?\n"+
				"Check the network: the installer brings up the addresses the old system had (kexec/ip); "+
				"a new DHCP lease, a MAC-bound address or a firewall in front changes where it answers, "+
				"and --post-kexec-ssh-port is needed if its sshd listens on another port.\n"+
				"--kexec-timeout waits longer", where, upTimeout, w.last())
		}
		return kexecKeyError(err, oldKey)
	}
	r.client = sshConn{up}
	r.hostKey = up.HostKey()
	r.rep.Info(phase, "the installer presents the host key seen before the kexec ("+fingerprint(oldKey)+")", map[string]any{"hostKey": fingerprint(oldKey), "verified": true})

	s = r.rep.Step(phase, "check the installer")
	f, err := facts.Gather(ctx, up.User())
	if err != nil {
		return s.Done(err)
	}
	switch {
	case f.BootID != "" && f.BootID == oldBoot:
		return s.Done(fmt.Errorf("the target did not restart (same boot id %s): the kexec did not happen", oldBoot))
	case !f.IsInstaller:
		return s.Done(fmt.Errorf("after the kexec the target runs %q, not a NixOS installer (no VARIANT_ID=installer or /etc/is_kexec): "+
			"the kexec failed and the machine came back into its old system, or the tarball is not an installer", describeOS(f)))
	}
	up.SetPrivilege(f.Privilege)
	s.Detail(describeFacts(f), nil)
	s.Done(nil)
	root, err := up.Root(ctx)
	if err != nil {
		return err
	}
	r.facts, r.root, r.bootID, r.target = f, root, f.BootID, after
	return nil
}

// kexecKeyError explains a refused key after kexec.
func kexecKeyError(err error, old ssh.PublicKey) error {
	var hke *remote.HostKeyError
	if errors.As(err, &hke) {
		return fmt.Errorf("%s: %w", hostKeyChanged(hke.Key, old), err)
	}
	return err
}

// hostKeyChanged says that the target presents another host key after the kexec,
// whether the wait for the old system to go down or the wait for the installer met it.
func hostKeyChanged(key, old ssh.PublicKey) string {
	return fmt.Sprintf("after the kexec the target presents host key %s, but before it presented %s: "+
		"the installer did not carry the host keys over (a kexec tarball whose run does not copy /etc/ssh/ssh_host_*), "+
		"or another machine answers at this address; refusing to continue", fingerprint(key), fingerprint(old))
}
