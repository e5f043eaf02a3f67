# Evaluates nix/module.nix with the REAL nixpkgs lib (path in NIXPKGS_LIB),
# the NixOS option stand-ins of nixos-stub.nix and the package stand-ins of
# stand-in-pkgs.nix (whose runCommand makes real derivations).
{
  libPath,
  # store path with bin/disko-compile, or null (then nothing is built)
  diskoCompile ? null,
  modules,
}:
let
  lib = import libPath;
  pkgs = import ./stand-in-pkgs.nix { inherit diskoCompile; };
in
lib.evalModules {
  modules = [
    ./nixos-stub.nix
    ../../../nix/module.nix
    { _module.args.pkgs = pkgs; }
  ]
  ++ (if diskoCompile == null then [ ] else [ { disko.package = pkgs.disko-compile; } ])
  ++ modules;
}
