# Nix forbids an argument it was not declared with: --arg extra fails here.
{ device ? "/dev/vda" }:
{ disko.devices.disk.main = { inherit device; }; }
