// Package nixtest checks the Nix layer (nix/, flake.nix, examples/) with the Nix that is
// installed here (Debian's nix-bin 2.8, no nixpkgs, no network).
//
// nixpkgs cannot be fetched on these machines, so the NixOS module cannot be evaluated
// in a real NixOS system here. The tests check what can be checked honestly and label
// every stand-in: every .nix file parses; the pure helpers of nix/lib.nix evaluate with
// builtins only; the flake's outputs are enumerated with stand-in inputs; the examples
// flake is evaluated by Nix's own flake machinery (a stand-in nixpkgs only satisfies the
// lock); the compile derivations really build, with the real disko-compile and a
// stand-in runCommand; the pinned vendorHash is recomputed from go.mod/go.sum. With
// NIXPKGS_LIB pointing at a nixpkgs lib directory, the module is also evaluated with the
// real module system (lib.evalModules).
package nixtest
