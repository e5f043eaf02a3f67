package eval

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const corpus = "/work/shared/corpus/disko-examples"

// needNix skips tests that evaluate Nix when it is not installed.
func needNix(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		t.Skipf("nix-instantiate not on PATH (install nix-bin): %v", err)
	}
}

// testEnv is the environment of every Nix call in tests: the project's NIX_CONFIG and
// no NIX_PATH unless a case gives one, so that finding nixpkgs depends only on the case.
func testEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NIX_PATH=") && !strings.HasPrefix(kv, "NIX_CONFIG=") {
			env = append(env, kv)
		}
	}
	env = append(env, "NIX_CONFIG=substituters =\nexperimental-features = nix-command flakes")
	return append(env, extra...)
}

func abs(t testing.TB, path string) string {
	t.Helper()
	p, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// copyDir copies a fixture out of the git work tree, where a flake would only see
// committed or staged files.
func copyDir(t testing.TB, from, to string) {
	t.Helper()
	err := os.CopyFS(to, os.DirFS(from))
	if err != nil {
		t.Fatal(err)
	}
}

func decode(t testing.TB, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("result is not a JSON object: %v\n%s", err, raw)
	}
	return m
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestCorpus evaluates every disko example in place and checks that the result is the
// file's own disko.devices, as plain nix-instantiate computes it.
func TestCorpus(t *testing.T) {
	needNix(t)
	files, err := filepath.Glob(filepath.Join(corpus, "*.nix"))
	if err != nil || len(files) == 0 {
		t.Skipf("no disko examples in %s: %v", corpus, err)
	}
	ev := &Evaluator{Env: testEnv()}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			got, err := ev.Devices(t.Context(), Source{Path: file, Nixpkgs: "testdata/fakelib"})
			if err != nil {
				t.Fatal(err)
			}
			devices := decode(t, got)
			if _, ok := devices["disk"]; !ok {
				t.Fatalf("no disk key; keys: %v", keys(devices))
			}
			// Compare with Nix's own answer for files that are plain attribute sets.
			cmd := exec.Command("nix-instantiate", "--eval", "--strict", "--json", file)
			cmd.Env = testEnv()
			out, err := cmd.Output()
			if err != nil {
				return // a function of lib: nix-instantiate alone cannot call it
			}
			var whole struct {
				Disko struct{ Devices map[string]any }
			}
			if err := json.Unmarshal(out, &whole); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(devices, whole.Disko.Devices) {
				t.Errorf("devices differ from nix-instantiate's disko.devices:\n got %s\nwant %s", got, out)
			}
		})
	}
}

// TestDevices covers the ways a layout is given and the ways it fails. want lists the
// expected disk names (or, for errors, wantErr and substrings of the message).
func TestDevices(t *testing.T) {
	needNix(t)
	withLib := filepath.Join(corpus, "with-lib.nix")
	fakelib := abs(t, "testdata/fakelib")
	flakes := t.TempDir()
	copyDir(t, "testdata/flakes", flakes)
	l := func(name string) string { return filepath.Join("testdata/layouts", name) }

	tests := []struct {
		name    string
		src     Source
		env     []string // added to testEnv()
		stdin   string
		want    []string // disk names of the result
		wantErr error
		wantMsg []string
	}{
		// Functions of lib and their arguments.
		{name: "lib missing", src: Source{Path: withLib}, wantErr: ErrNeedsLib, wantMsg: []string{
			withLib + ": this layout is a function of `lib` (nixpkgs' library), but no nixpkgs was found: pass --nixpkgs PATH or put nixpkgs on NIX_PATH (NIX_PATH=nixpkgs=/path/to/nixpkgs)"}},
		{name: "lib from --nixpkgs checkout", src: Source{Path: withLib, Nixpkgs: fakelib}, want: []string{"/dev/vdb"}},
		{name: "lib from --nixpkgs lib dir", src: Source{Path: withLib, Nixpkgs: fakelib + "/lib"}, want: []string{"/dev/vdb"}},
		{name: "lib from NIX_PATH", src: Source{Path: withLib}, env: []string{"NIX_PATH=nixpkgs=" + fakelib}, want: []string{"/dev/vdb"}},
		{name: "--nixpkgs without lib", src: Source{Path: withLib, Nixpkgs: "testdata/layouts"}, wantMsg: []string{"--nixpkgs testdata/layouts: neither"}},
		{name: "--arg", src: Source{Path: withLib, Nixpkgs: fakelib, Args: []Arg{{Name: "disks", Value: `[ "/dev/sda" "/dev/sdb" ]`}}},
			want: []string{"/dev/sda", "/dev/sdb"}},
		{name: "--argstr", src: Source{Path: l("argstr.nix"), Args: []Arg{{Name: "device", Value: "/dev/nvme0n1", String: true}}}, want: []string{"main"}},
		{name: "--arg unknown to a function without ...", src: Source{Path: l("strict-args.nix"), Args: []Arg{{Name: "extra", Value: "1"}}},
			wantErr: ErrNixFailed, wantMsg: []string{"strict-args.nix: nix-instantiate failed:\n", "unexpected argument 'extra'"}},
		{name: "--arg that is not an expression", src: Source{Path: l("argstr.nix"), Args: []Arg{{Name: "device", Value: "sda disk"}}},
			wantErr: ErrNixFailed, wantMsg: []string{"argstr.nix: nix-instantiate failed:\n", "hint: --arg NAME VALUE takes a Nix expression; use --argstr"}},
		{name: "module args unused", src: Source{Path: l("module-args-unused.nix")}, want: []string{"main"}},
		{name: "module args used", src: Source{Path: l("module-args-used.nix")}, wantErr: ErrModule, wantMsg: []string{"module-args-used.nix: this layout uses `config`"}},
		{name: "module with imports", src: Source{Path: l("module-imports.nix")}, wantErr: ErrModule, wantMsg: []string{"module-imports.nix: this is a NixOS module"}},

		// Shapes.
		{name: "bare devices", src: Source{Path: l("bare.nix")}, want: []string{"main"}},
		{name: "only disko.devices is converted", src: Source{Path: l("unrelated-function.nix")}, want: []string{"main"}},
		{name: "not a layout", src: Source{Path: l("not-layout.nix")}, wantErr: ErrShape, wantMsg: []string{"not-layout.nix: not a disko layout", "found top-level keys: bar, foo"}},
		{name: "disko without devices", src: Source{Path: l("disko-no-devices.nix")}, wantErr: ErrShape, wantMsg: []string{"found top-level keys: disko.enableConfig"}},

		// Nix failures: the message names the file and keeps Nix's text.
		{name: "syntax error", src: Source{Path: l("syntax-error.nix")}, wantErr: ErrNixFailed,
			wantMsg: []string{"syntax-error.nix: nix-instantiate failed:\nerror: syntax error, unexpected end of file", "syntax-error.nix:3:"}},
		{name: "throw", src: Source{Path: l("throw.nix")}, wantErr: ErrNixFailed, wantMsg: []string{"throw.nix: nix-instantiate failed:\nerror: no disk configured for this host"}},
		{name: "show trace", src: Source{Path: l("function-value.nix"), ShowTrace: true}, wantErr: ErrNixFailed, wantMsg: []string{"cannot convert a function to JSON", "\n       … "}},
		{name: "partial JSON", src: Source{Path: l("function-value.nix")}, wantErr: ErrNixFailed, wantMsg: []string{"cannot convert a function to JSON"}},
		{name: "missing file", src: Source{Path: l("nope.nix")}, wantErr: fs.ErrNotExist, wantMsg: []string{"nope.nix"}},

		// JSON.
		{name: "json", src: Source{Path: l("wrapped.json")}, want: []string{"main"}},
		{name: "json bare", src: Source{Path: l("bare.json")}, want: []string{"main"}},
		{name: "json stdin", src: Source{Path: "-"}, stdin: `{"disko":{"devices":{"disk":{"a":{},"b":{}}}}}`, want: []string{"a", "b"}},
		{name: "json bad", src: Source{Path: l("bad.json")}, wantErr: ErrBadJSON, wantMsg: []string{"bad.json:3:26: not valid JSON"}},
		{name: "json bad stdin", src: Source{Path: "-"}, stdin: "{", wantErr: ErrBadJSON, wantMsg: []string{"<stdin>:1:2: not valid JSON"}},
		{name: "json array", src: Source{Path: l("array.json")}, wantErr: ErrShape, wantMsg: []string{"array.json: not a disko layout", "found a array"}},
		{name: "json disko without devices", src: Source{Path: l("disko-no-devices.json")}, wantErr: ErrShape, wantMsg: []string{"found top-level keys: disko.enableConfig"}},
		{name: "json devices not an object", src: Source{Path: l("devices-array.json")}, wantErr: ErrShape, wantMsg: []string{"found disko.devices of type array"}},
		{name: "json with --arg", src: Source{Path: l("wrapped.json"), Args: []Arg{{Name: "a", Value: "1"}}}, wantMsg: []string{"apply only to Nix layouts"}},

		// Flakes (copied out of the git work tree).
		{name: "flake diskoConfigurations", src: Source{Flake: flakes + "/disko#demo"}, want: []string{"main"}},
		{name: "flake path:", src: Source{Flake: "path:" + flakes + "/disko#demo"}, want: []string{"main"}},
		{name: "flake function with --argstr", src: Source{Flake: flakes + "/disko#sized", Args: []Arg{{Name: "size", Value: "2G", String: true}}}, want: []string{"main"}},
		{name: "flake nixosConfigurations", src: Source{Flake: flakes + "/nixos#host"}, want: []string{"main"}},
		{name: "flake diskoConfigurations first", src: Source{Flake: flakes + "/nixos#both"}, want: []string{"fromDisko"}},
		{name: "flake without disko module", src: Source{Flake: flakes + "/nixos#plain"}, wantErr: ErrNoConfig, wantMsg: []string{"nixosConfigurations.plain has no disko.devices option"}},
		{name: "flake no such name", src: Source{Flake: flakes + "/nixos#nope"}, wantErr: ErrNoConfig,
			wantMsg: []string{"neither diskoConfigurations.nope nor nixosConfigurations.nope (diskoConfigurations: both; nixosConfigurations: both, host, plain)"}},
		{name: "flake without #NAME", src: Source{Flake: flakes + "/nixos"}, wantMsg: []string{"expected REF#NAME"}},
		{name: "file and flake", src: Source{Path: l("bare.nix"), Flake: flakes + "/disko#demo"}, wantMsg: []string{"not both"}},
		{name: "nothing", src: Source{}, wantMsg: []string{"no layout given"}},
		{name: "flake dir without flake.nix", src: Source{Flake: flakes + "#x"}, wantMsg: []string{"is not a flake"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &Evaluator{Env: testEnv(tt.env...), Stdin: strings.NewReader(tt.stdin)}
			got, err := ev.Devices(t.Context(), tt.src)
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want errors.Is %v", err, tt.wantErr)
			}
			for _, s := range tt.wantMsg {
				if err == nil || !strings.Contains(err.Error(), s) {
					t.Errorf("error %v, want it to contain %q", err, s)
				}
			}
			if tt.want == nil {
				if err == nil {
					t.Errorf("no error; result %s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			disks, _ := decode(t, got)["disk"].(map[string]any)
			if k := keys(disks); !slices.Equal(k, tt.want) {
				t.Errorf("disks %v, want %v\n%s", k, tt.want, got)
			}
		})
	}
}

// TestValues checks values that the names alone do not show: arguments reach the
// layout, and module internals are dropped from nixosConfigurations.
func TestValues(t *testing.T) {
	needNix(t)
	flakes := t.TempDir()
	copyDir(t, "testdata/flakes", flakes)
	tests := []struct {
		name string
		src  Source
		want string
	}{
		{"argstr", Source{Path: "testdata/layouts/argstr.nix", Args: []Arg{{Name: "device", Value: "/dev/nvme0n1", String: true}}},
			`{"disk":{"main":{"device":"/dev/nvme0n1","type":"disk"}}}`},
		{"default kept", Source{Path: "testdata/layouts/argstr.nix"}, `{"disk":{"main":{"device":"/dev/vda","type":"disk"}}}`},
		{"flake function", Source{Flake: flakes + "/disko#sized", Args: []Arg{{Name: "size", Value: "2G", String: true}}},
			`{"disk":{"main":{"content":{"partitions":{"root":{"size":"2G"}},"type":"gpt"},"device":"/dev/vda","type":"disk"}}}`},
		{"nixos internals dropped", Source{Flake: flakes + "/nixos#host"},
			`{"disk":{"main":{"content":{"partitions":{"ESP":{"size":"500M","type":"EF00"}},"type":"gpt"},"device":"/dev/vda","type":"disk"}}}`},
		{"json keeps the devices text", Source{Path: "testdata/layouts/bare.json"}, `{"disk":{"main":{"device":"/dev/vda"}},"nodev":{"/tmp":{"fsType":"tmpfs"}}}`},
	}
	ev := &Evaluator{Env: testEnv()}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ev.Devices(t.Context(), tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestFlakeRelativeRef evaluates ./disko#demo from the flakes' parent directory, the way
// a user types it.
func TestFlakeRelativeRef(t *testing.T) {
	needNix(t)
	dir := t.TempDir()
	copyDir(t, "testdata/flakes", dir)
	t.Chdir(dir)
	for _, ref := range []string{"./disko#demo", "path:./disko#demo", "./nixos/../disko#demo"} {
		got, err := (&Evaluator{Env: testEnv()}).Devices(t.Context(), Source{Flake: ref})
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if _, ok := decode(t, got)["disk"]; !ok {
			t.Errorf("%s: no disk in %s", ref, got)
		}
	}
}

// TestFlakeUntracked shows the hint for a flake in a git work tree whose files git does
// not know, and that `git add` is all it takes.
func TestFlakeUntracked(t *testing.T) {
	needNix(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skipf("git not on PATH: %v", err)
	}
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	if err := os.WriteFile(filepath.Join(repo, "README"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "README")
	git("commit", "-qm", "init")
	copyDir(t, "testdata/flakes/disko", filepath.Join(repo, "layouts"))

	ev := &Evaluator{Env: testEnv()}
	src := Source{Flake: repo + "/layouts#demo"}
	_, err := ev.Devices(t.Context(), src)
	if !errors.Is(err, ErrNixFailed) || !strings.Contains(err.Error(), "hint: the flake is in the git work tree "+repo) {
		t.Fatalf("untracked flake: error %v, want the git hint", err)
	}
	if strings.Contains(err.Error(), "is dirty") {
		t.Errorf("noise left in the message: %v", err)
	}
	git("add", "layouts")
	if _, err := ev.Devices(t.Context(), src); err != nil {
		t.Fatalf("after git add: %v", err)
	}
}

// TestNixNotFound: a missing Nix is one sentence, not an exec error.
func TestNixNotFound(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name string
		ev   Evaluator
		src  Source
		want string
	}{
		{"NixBinDir", Evaluator{NixBinDir: empty, Env: []string{"PATH=" + empty}}, Source{Path: "testdata/layouts/bare.nix"},
			"Nix is needed to evaluate testdata/layouts/bare.nix but nix-instantiate was not found in " + empty + "; install it (Debian: apt-get install nix-bin) or pass a .json layout"},
		{"PATH", Evaluator{Env: []string{"PATH=" + empty}}, Source{Flake: "github:x/y#z"},
			"Nix is needed to evaluate github:x/y#z but nix-instantiate was not found on PATH; install it (Debian: apt-get install nix-bin) or pass a .json layout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.ev.Devices(t.Context(), tt.src)
			if !errors.Is(err, ErrNixNotFound) || err.Error() != tt.want {
				t.Errorf("error %v\nwant %s", err, tt.want)
			}
		})
	}
	// JSON needs no Nix.
	ev := Evaluator{NixBinDir: empty, Env: []string{"PATH=" + empty}}
	if _, err := ev.Devices(t.Context(), Source{Path: "testdata/layouts/wrapped.json"}); err != nil {
		t.Errorf("json without nix: %v", err)
	}
}

// TestTimeout: a layout that blocks (reading a FIFO nobody writes) is stopped by the
// context's deadline.
func TestTimeout(t *testing.T) {
	needNix(t)
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Skipf("cannot make a FIFO: %v", err)
	}
	layout := filepath.Join(dir, "blocks.nix")
	if err := os.WriteFile(layout, []byte(`{ disko.devices = builtins.fromJSON (builtins.readFile ./fifo); }`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := (&Evaluator{Env: testEnv()}).Devices(ctx, Source{Path: layout})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), layout+": evaluation stopped after") {
		t.Errorf("error %v, want a deadline error naming the layout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s after a 300ms deadline", d)
	}
}

// BenchmarkDevices times each corpus layout against plain nix-instantiate on the same
// file (the baseline: what one Nix process costs), and reports the ratio.
func BenchmarkDevices(b *testing.B) {
	needNix(b)
	files, _ := filepath.Glob(filepath.Join(corpus, "*.nix"))
	ev := &Evaluator{Env: testEnv()}
	for _, file := range files {
		b.Run(strings.TrimSuffix(filepath.Base(file), ".nix"), func(b *testing.B) {
			plain := func() error {
				cmd := exec.Command("nix-instantiate", "--eval", "--strict", "--json", file)
				cmd.Env = testEnv()
				return cmd.Run()
			}
			base := time.Duration(0)
			if plain() == nil { // not for functions of lib
				const n = 20
				start := time.Now()
				for range n {
					if err := plain(); err != nil {
						b.Fatal(err)
					}
				}
				base = time.Since(start) / n
			}
			src := Source{Path: file, Nixpkgs: "testdata/fakelib"}
			b.ResetTimer()
			for b.Loop() {
				if _, err := ev.Devices(context.Background(), src); err != nil {
					b.Fatal(err)
				}
			}
			perOp := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(perOp.Microseconds())/1000, "ms/eval")
			if base > 0 {
				b.ReportMetric(float64(perOp)/float64(base), "x-plain-nix")
			}
		})
	}
}

// BenchmarkFlake times the two flake paths (each copies the flake to the store first).
func BenchmarkFlake(b *testing.B) {
	needNix(b)
	dir := b.TempDir()
	copyDir(b, "testdata/flakes", dir)
	ev := &Evaluator{Env: testEnv()}
	for _, ref := range []string{"disko#demo", "nixos#host"} {
		b.Run(ref, func(b *testing.B) {
			for b.Loop() {
				if _, err := ev.Devices(context.Background(), Source{Flake: dir + "/" + ref}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((b.Elapsed()/time.Duration(b.N)).Microseconds())/1000, "ms/eval")
		})
	}
}

// TestRealStoreFallback evaluates a layout that reads a store path, which only the real
// store knows to be valid: the first evaluation, with the dummy store, fails, and the
// layout is evaluated again with the real one.
func TestRealStoreFallback(t *testing.T) {
	needNix(t)
	dir := t.TempDir()
	name := filepath.Join(dir, "name")
	if err := os.WriteFile(name, []byte("cryptroot"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nix-store", "--add", name)
	cmd.Env = testEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-store --add: %v", err)
	}
	storePath := strings.TrimSpace(string(out))
	layout := `{ disk.main = { device = "/dev/vda"; content = { type = "luks"; name = builtins.readFile (builtins.storePath "` + storePath + `"); }; }; }`
	got := devicesOfFile(t, dir, layout)
	want := `{"disk":{"main":{"content":{"name":"cryptroot","type":"luks"},"device":"/dev/vda"}}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestPathValues checks that a path in a layout (keyFile = ./secret.key) comes out as the
// file's own path, not as a store path that --eval computes but never copies.
func TestPathValues(t *testing.T) {
	needNix(t)
	dir := t.TempDir()
	layout := `{ disk.main = { device = "/dev/vda"; content = { type = "luks"; name = "c"; settings.keyFile = ./secret.key; additionalKeyFiles = [ ./second.key ]; }; }; }`
	got := devicesOfFile(t, dir, layout)
	want := `{"disk":{"main":{"content":{"additionalKeyFiles":["` + dir + `/second.key"],"name":"c","settings":{"keyFile":"` + dir + `/secret.key"},"type":"luks"},"device":"/dev/vda"}}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// devicesOfFile writes layout as layout.nix in dir and returns the devices JSON the
// evaluator gives for that file.
func devicesOfFile(t *testing.T, dir, layout string) string {
	t.Helper()
	file := filepath.Join(dir, "layout.nix")
	if err := os.WriteFile(file, []byte(layout), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := (&Evaluator{Env: testEnv()}).Devices(t.Context(), Source{Path: file})
	if err != nil {
		t.Fatal(err)
	}
	return string(got)
}
