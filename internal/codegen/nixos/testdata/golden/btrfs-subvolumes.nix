# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = { };
  fileSystems = {
    "/" = {
      device = "/dev/disk/by-partlabel/disk-main-root";
      fsType = "btrfs";
      options = [
        "defaults"
        "subvol=/rootfs"
      ];
    };
    "/.swapvol" = {
      device = "/dev/disk/by-partlabel/disk-main-root";
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
      device = "/dev/disk/by-partlabel/disk-main-root";
      fsType = "btrfs";
      options = [
        "compress=zstd"
        "subvol=/home"
      ];
    };
    "/nix" = {
      device = "/dev/disk/by-partlabel/disk-main-root";
      fsType = "btrfs";
      options = [
        "compress=zstd"
        "noatime"
        "subvol=/nix"
      ];
    };
    "/partition-root" = {
      device = "/dev/disk/by-partlabel/disk-main-root";
      fsType = "btrfs";
      options = [
        "defaults"
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
    {
      device = "/.swapvol/rel-path";
      options = [
        "defaults"
      ];
      priority = null;
    }
    {
      device = "/partition-root/swapfile";
      options = [
        "defaults"
      ];
      priority = null;
    }
    {
      device = "/partition-root/swapfile1";
      options = [
        "defaults"
      ];
      priority = null;
    }
  ];
}
