# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = {
    initrd = {
      luks = {
        devices = {
          crypted = {
            allowDiscards = true;
            device = "/dev/disk/by-partlabel/disk-main-luks";
            keyFile = "/tmp/secret.key";
          };
        };
      };
    };
  };
  fileSystems = {
    "/" = {
      device = "/dev/mapper/crypted";
      fsType = "btrfs";
      options = [
        "compress=zstd"
        "noatime"
        "subvol=/root"
      ];
    };
    "/.swapvol" = {
      device = "/dev/mapper/crypted";
      fsType = "btrfs";
      options = [
        "defaults"
        "subvol=/swap"
      ];
    };
    "/boot" = {
      device = "/dev/disk/by-partlabel/disk-main-ESP";
      fsType = "vfat";
      options = [
        "umask=0077"
      ];
    };
    "/home" = {
      device = "/dev/mapper/crypted";
      fsType = "btrfs";
      options = [
        "compress=zstd"
        "noatime"
        "subvol=/home"
      ];
    };
    "/nix" = {
      device = "/dev/mapper/crypted";
      fsType = "btrfs";
      options = [
        "compress=zstd"
        "noatime"
        "subvol=/nix"
      ];
    };
  };
  swapDevices = [
    {
      device = "/.swapvol/swapfile";
      options = [
        "defaults"
      ];
      priority = null;
    }
  ];
}
