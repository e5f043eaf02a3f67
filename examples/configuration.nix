# A minimal machine to install with anywhere: boots with systemd-boot from
# the ESP of disk-config.nix and lets root in over SSH with your key.
{ modulesPath, ... }:
{
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];

  boot.loader.systemd-boot.enable = true;
  boot.loader.efi.canTouchEfiVariables = true;
  boot.initrd.availableKernelModules = [
    "virtio_pci"
    "virtio_blk"
    "ahci"
    "nvme"
    "sd_mod"
  ];

  services.openssh.enable = true;
  users.users.root.openssh.authorizedKeys.keys = [
    # Replace with your own public key.
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemoKeyReplaceMeWithYourOwnPublicKey00000 demo"
  ];

  networking.hostName = "demo";
  system.stateVersion = "25.11";
}
