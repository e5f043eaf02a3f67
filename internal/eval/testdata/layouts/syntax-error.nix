# Missing closing braces: a Nix syntax error.
{
  disko.devices = {
