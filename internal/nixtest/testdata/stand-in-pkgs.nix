# STAND-IN for a nixpkgs package set. NOT nixpkgs.
#
# nixpkgs cannot be fetched on the CI machines, so the tests give the code in
# nix/ this tiny stand-in with only the attributes that code uses:
#   - runCommand: a REAL derivation (builtins.derivation, /bin/bash builder,
#     the host's coreutils/shellcheck/jq on PATH) so compile.nix's build
#     scripts really run; no stdenv, no sandbox;
#   - disk tools (util-linux, cryptsetup, ...): fake store paths, only ever
#     written into the scripts' PATH line, never executed;
#   - buildGoModule / mkShell: records of their arguments (structure test),
#     not buildable.
{
  system ? builtins.currentSystem,
  # A store path with bin/disko-compile (the real binary), or null.
  diskoCompile ? null,
}:
let
  hostTool = name: {
    inherit name;
    outPath = "/usr";
    standIn = "host tool from /usr/bin";
  };
  fakeTool = name: {
    inherit name;
    outPath = "/stand-in/${name}";
    standIn = "fake store path";
  };
  toolNames = [
    "bash"
    "coreutils"
    "util-linux"
    "gnugrep"
    "gnused"
    "gawk"
    "findutils"
    "systemdMinimal"
    "gptfdisk"
    "parted"
    "cryptsetup"
    "lvm2"
    "kmod"
    "mdadm"
    "zfs"
    "btrfs-progs"
    "bcachefs-tools"
    "e2fsprogs"
    "dosfstools"
    "xfsprogs"
    "f2fs-tools"
    "exfatprogs"
    "ntfs3g"
    "mtools"
    "qemu-utils"
    "qemu"
    "nix"
    "openssh"
  ];
  # e2fsprogs keeps its binaries in the `bin` output in nixpkgs; model that
  # so binPath's output selection is exercised.
  multiOutput = {
    e2fsprogs = fakeTool "e2fsprogs" // {
      bin = fakeTool "e2fsprogs-bin";
    };
  };

  runCommand =
    name: env: script:
    let
      inputs = env.nativeBuildInputs or [ ];
      path = builtins.concatStringsSep ":" (map (p: "${p}/bin") inputs ++ [
        "/usr/bin"
        "/bin"
      ]);
      drv = derivation (
        removeAttrs env [
          "nativeBuildInputs"
          "passthru"
          "meta"
        ]
        // {
          inherit name system;
          builder = "/bin/bash";
          args = [
            "-euc"
            ''
              export PATH=${path}
              cd "$NIX_BUILD_TOP"
              ${script}
            ''
          ];
          standIn = "runCommand";
        }
      );
    in
    drv // (env.passthru or { }) // { meta = env.meta or { }; };

  self =
    builtins.listToAttrs (
      map (n: {
        name = n;
        value = fakeTool n;
      }) toolNames
    )
    // multiOutput
    // {
      inherit runCommand;
      # nixpkgs' closureInfo (store-paths, registration of every one of them),
      # made with the host's nix-store: builds run unsandboxed here, so they can
      # read the Nix database.
      closureInfo =
        { rootPaths }:
        runCommand "closure-info" {
          inherit rootPaths;
        } ''
          mkdir "$out"
          nix-store --query --requisites $rootPaths | sort > "$out/store-paths"
          nix-store --dump-db $(cat "$out/store-paths") > "$out/registration"
        '';
      runtimeShell = "/bin/bash";
      shellcheck = hostTool "shellcheck";
      jq = hostTool "jq";
      diffutils = hostTool "diffutils";
      go = hostTool "go";
      buildPackages = self;
      stdenv.hostPlatform.system = system;
      buildGoModule = args: {
        standIn = "buildGoModule";
        inherit args;
        type = "derivation";
        name = "${args.pname}-${args.version}";
        outPath = "/stand-in/${args.pname}-${args.version}";
      };
      mkShell = args: {
        standIn = "mkShell";
        inherit args;
        type = "derivation";
        name = "shell";
        outPath = "/stand-in/shell";
      };
    }
    // (
      if diskoCompile == null then
        { }
      else
        {
          disko-compile = {
            name = "disko-compile";
            outPath = diskoCompile;
          };
        }
    );
in
self
