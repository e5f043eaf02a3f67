# NixOS configuration implied by a disko layout, written by `disko-compile nixos-config --nix`.
# Import it as a module: imports = [ ./this-file.nix ];
{
  boot = { };
  fileSystems = {
    "/" = {
      device = "zroot/root";
      fsType = "zfs";
      options = [
        "defaults"
        "zfsutil"
      ];
    };
    "/boot" = {
      device = "/dev/disk/by-partlabel/disk-root-ESP";
      fsType = "vfat";
      options = [
        "nofail"
      ];
    };
    "/nix" = {
      device = "zroot/root/nix";
      fsType = "zfs";
      options = [
        "defaults"
        "zfsutil"
      ];
    };
  };
  swapDevices = [
    {
      device = "/dev/zvol/zroot/root/swap";
      discardPolicy = null;
      options = [
        "defaults"
      ];
      priority = null;
      randomEncryption = {
        allowDiscards = false;
        enable = false;
      };
    }
  ];
}
