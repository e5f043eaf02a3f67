{
  description = "disko-compatible disk layouts compiled to scripts, and nixos-anywhere-compatible installs over SSH";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  # All outputs live in nix/flake.nix (a plain function of the inputs).
  outputs = inputs: import ./nix/flake.nix inputs;
}
