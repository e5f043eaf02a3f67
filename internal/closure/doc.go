// Package closure ships Nix closures (listed with internal/nixcmd) to a
// target over an SSH session the caller already has (no ssh binary, no
// NIX_SSHOPTS).
//
// The copy speaks Nix's "serve" protocol (what `nix copy --to ssh://` uses)
// to `nix-store --serve --write` on the target: one session for the whole
// closure, paths already valid there (or substituted by the target itself)
// are skipped, and every missing path is streamed as a NAR dumped in-process
// and added with cmdAddToStoreNar, pipelined without waiting for each
// acknowledgement. The target stores each NAR as it arrives and checks its
// hash; this is why it is preferred over `nix-store --export | nix-store
// --import`, which buffers and hashes every NAR twice and measured half as
// fast on these machines (bench_test.go measures the routes side by side).
//
// The protocol's framing is go-nix's wire package. The NAR serialisation is
// our own (nar.go), not go-nix's nar.DumpPath: that writer hands every node
// to a goroutine over channels and copies file contents once more, and
// BenchmarkNARWriter measured it 1.1-2.1x slower on large files and 1.8-4x
// on many small ones, on the hot path of every copy.
package closure
