# A stand-in for nixpkgs' lib (nixpkgs is not available to the tests) with just what the
# corpus's with-lib.nix uses, written with builtins.
{
  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
  inherit (builtins) replaceStrings;
}
