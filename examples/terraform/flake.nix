# A fleet of two machines from one flake, installed and kept up to date by
# Terraform or OpenTofu through the anywhere provider (see ./main.tf).
#
# (In your own flake, replace the `path:../..` input by
# `github:diskoanywhere/diskoanywhere`.)
{
  inputs = {
    diskoanywhere.url = "path:../..";
    nixpkgs.follows = "diskoanywhere/nixpkgs";
  };

  outputs =
    { nixpkgs, diskoanywhere, ... }:
    let
      # Both machines share the disk layout and the configuration; only the
      # host name differs. main.tf picks the disk device of each machine.
      machine =
        name:
        nixpkgs.lib.nixosSystem {
          modules = [
            diskoanywhere.nixosModules.default
            ./disk-config.nix
            ./configuration.nix
            {
              nixpkgs.hostPlatform = "x86_64-linux";
              networking.hostName = name;
            }
          ];
        };
    in
    {
      nixosConfigurations = {
        web1 = machine "web1";
        web2 = machine "web2";
      };
    };
}
