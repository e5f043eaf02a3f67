# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = {
    resumeDevice = "/dev/disk/by-partlabel/disk-main-plainSwap";
  };
  fileSystems = {
    "/" = {
      device = "/dev/disk/by-partlabel/disk-main-root";
      fsType = "ext4";
      options = [
        "defaults"
      ];
    };
    "/boot" = {
      device = "/dev/disk/by-partlabel/disk-main-ESP";
      fsType = "vfat";
      options = [
        "umask=0077"
      ];
    };
  };
  swapDevices = [
    {
      device = "/dev/disk/by-partlabel/disk-main-encryptedSwap";
      discardPolicy = null;
      options = [
        "defaults"
      ];
      priority = 100;
      randomEncryption = {
        allowDiscards = false;
        enable = true;
      };
    }
    {
      device = "/dev/disk/by-partlabel/disk-main-plainSwap";
      discardPolicy = "both";
      options = [
        "defaults"
      ];
      priority = null;
      randomEncryption = {
        allowDiscards = true;
        enable = false;
      };
    }
  ];
}
