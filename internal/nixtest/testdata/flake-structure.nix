# Structure test of nix/flake.nix with STAND-IN inputs (stand-in-nixpkgs.nix):
# which outputs exist per system and what the packages are built from. It
# does not evaluate nixpkgs, the module or any derivation.
let
  outputs = import ../../../nix/flake.nix {
    self = outputs;
    nixpkgs = import ./stand-in-nixpkgs.nix;
  };
  names = builtins.mapAttrs (_: builtins.attrNames);
  pkg = p: {
    inherit (p.args) pname subPackages doCheck;
    mainProgram = p.args.meta.mainProgram;
    cgo = p.args.env.CGO_ENABLED;
    vendorHashIsPinned = p.args.vendorHash == import ../../../nix/vendor-hash.nix;
  };
in
{
  top = builtins.attrNames outputs;
  packages = names outputs.packages;
  apps = names outputs.apps;
  checks = names outputs.checks;
  devShells = names outputs.devShells;
  nixosModules = builtins.mapAttrs (_: toString) outputs.nixosModules;
  lib = builtins.attrNames outputs.lib;
  # lib.compile with the stand-in package set: names only, nothing is built.
  compileScripts = builtins.attrNames
    (outputs.lib.compile {
      pkgs = import ./stand-in-pkgs.nix { };
      devices = import ../../../examples/disk-config-simple.nix;
    }).scripts;
  appPrograms = builtins.mapAttrs (_: a: a.program) outputs.apps.x86_64-linux;
  packageArgs = builtins.mapAttrs (_: pkg) outputs.packages.x86_64-linux;
}
