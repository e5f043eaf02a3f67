# STAND-IN for the nixpkgs flake input. NOT nixpkgs: only what nix/flake.nix
# reads (legacyPackages.<system>, lib.nixosSystem), built from
# stand-in-pkgs.nix. Used by the flake structure test, which only looks at
# output names and package arguments.
let
  systems = (import ../../../nix/lib.nix).systems.all;
in
{
  lib.nixosSystem = _: throw "stand-in nixpkgs: nixosSystem is not available here";
  legacyPackages = builtins.listToAttrs (
    map (system: {
      name = system;
      value = import ./stand-in-pkgs.nix { inherit system; };
    }) systems
  );
}
