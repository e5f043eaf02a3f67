# What every machine of the fleet runs: systemd-boot from the ESP of
# disk-config.nix, and SSH for root with your key (Terraform deploys later
# system changes over it).
{ modulesPath, ... }:
{
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];

  boot.loader.systemd-boot.enable = true;
  boot.loader.efi.canTouchEfiVariables = true;

  services.openssh.enable = true;
  users.users.root.openssh.authorizedKeys.keys = [
    # Replace with your own public key.
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemoKeyReplaceMeWithYourOwnPublicKey00000 demo"
  ];

  system.stateVersion = "25.11";
}
