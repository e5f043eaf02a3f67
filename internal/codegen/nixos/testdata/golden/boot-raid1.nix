# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = {
    loader = {
      grub = {
        devices = [
          "/dev/sda"
          "/dev/sdb"
        ];
      };
    };
    swraid = {
      enable = true;
    };
  };
  fileSystems = {
    "/" = {
      device = "/dev/disk/by-id/md-name-any:raid1-part1";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
    "/boot" = {
      device = "/dev/md/boot";
      fsType = "vfat";
      options = [
        "umask=0077"
      ];
    };
  };
  swapDevices = [ ];
}
