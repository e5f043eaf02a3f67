# A NixOS module: refused, its imports could change disko.devices.
{ config, ... }:
{
  imports = [ ];
  disko.devices.disk.main.device = "/dev/vda";
}
