# Example: a NixOS machine whose disks are described in disko's format.
#
#   disko-compile --flake ./examples#demo                       # check the layout
#   nix run .#anywhere -- --flake ./examples#demo root@host     # install it
#
# (Run from the repository root. In your own flake, replace the `path:..`
# input by `github:diskoanywhere/diskoanywhere`.)
{
  inputs = {
    diskoanywhere.url = "path:..";
    nixpkgs.follows = "diskoanywhere/nixpkgs";
  };

  outputs =
    { nixpkgs, diskoanywhere, ... }:
    {
      # Read by `disko-compile --flake ./examples#NAME` (as with disko).
      diskoConfigurations = {
        demo = import ./disk-config.nix;
        simple = import ./disk-config-simple.nix;
      };

      nixosConfigurations.demo = nixpkgs.lib.nixosSystem {
        modules = [
          diskoanywhere.nixosModules.default
          ./disk-config.nix
          ./configuration.nix
          {
            nixpkgs.hostPlatform = "x86_64-linux";
            # The IFD-free path: the NixOS config of disk-config.nix, written by
            #   disko-compile nixos-config --nix ./examples/disk-config.nix > ./examples/disk-config.generated.nix
            # Building the system fails if it no longer matches disk-config.nix.
            disko.generatedConfig = ./disk-config.generated.nix;
          }
        ];
      };
    };
}
