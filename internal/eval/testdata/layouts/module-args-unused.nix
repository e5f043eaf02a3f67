# Module-style arguments that are never used: evaluates without nixpkgs.
{ config, lib, pkgs, ... }:
{
  disko.devices.disk.main.device = "/dev/vda";
}
