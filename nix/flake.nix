# The flake's outputs as a plain function of its inputs (the repository's
# flake.nix is only the entry point). Kept free of flake machinery so tests
# can call it with stand-in inputs (internal/nixtest, structure test).
{ nixpkgs, ... }:
let
  pure = import ./lib.nix;

  forSystems =
    systems: f:
    builtins.listToAttrs (
      map (system: {
        name = system;
        value = f system;
      }) systems
    );
  forAll = forSystems pure.systems.all;
  isLinux = system: builtins.elem system pure.systems.linux;
  pkgsFor = system: nixpkgs.legacyPackages.${system};

  packagesFor =
    system:
    let
      pkgs = pkgsFor system;
      one =
        command:
        import ./package.nix {
          inherit pkgs;
          commands = [ command ];
          pname = command;
        };
    in
    {
      disko = one "disko";
      disko-install = one "disko-install";
      disko-compile = one "disko-compile";
      anywhere = one "anywhere";
      # All binaries, for `nix profile install`.
      default = import ./package.nix { inherit pkgs; };
    };

  app = drv: bin: description: {
    type = "app";
    program = "${drv}/bin/${bin}";
    meta = { inherit description; };
  };

  # Compile a layout without a NixOS system: the scripts (deps/ and nodeps/),
  # nixos-config.{json,nix}, and passthru `.scripts.<system.build name>`,
  # `.nixosConfig`, `.checkGenerated FILE`.
  compile =
    {
      pkgs,
      devices,
      rootMountPoint ? "/mnt",
      checkScripts ? false,
      package ? import ./package.nix {
        pkgs = pkgs.buildPackages or pkgs;
        commands = [ "disko-compile" ];
        pname = "disko-compile";
      },
    }:
    import ./compile.nix {
      inherit
        pkgs
        devices
        rootMountPoint
        checkScripts
        package
        ;
    };

  exampleLayouts = {
    demo = import ../examples/disk-config.nix;
    simple = import ../examples/disk-config-simple.nix;
  };
in
{
  packages = forAll packagesFor;

  apps = forAll (
    system:
    let
      p = packagesFor system;
    in
    {
      disko = app p.disko "disko" "Format and mount disks from a disko layout (disko's command line)";
      disko-install = app p.disko-install "disko-install" "Install a flake's NixOS configuration onto a local disk (disko-install's command line)";
      anywhere = app p.anywhere "anywhere" "Install NixOS over SSH (nixos-anywhere compatible)";
      disko-compile = app p.disko-compile "disko-compile" "Compile a disko layout to scripts and NixOS config";
      # disko's flake runs disko by default: `nix run <flake> -- --mode disko ./disk-config.nix`
      default = app p.disko "disko" "Format and mount disks from a disko layout (disko's command line)";
    }
  );

  nixosModules = {
    default = ./module.nix;
    disko = ./module.nix;
  };

  lib = {
    inherit compile;
    inherit (pure)
      normalize
      toJSON
      modes
      legacyScripts
      scriptAttrNames
      toolsFor
      ;
  };

  checks = forAll (
    system:
    let
      pkgs = pkgsFor system;
      p = packagesFor system;
      # The examples' scripts, shellchecked; and the module evaluated in a
      # real NixOS system (its fileSystems come through IFD).
      linuxChecks =
        builtins.listToAttrs (
          map (name: {
            name = "example-${name}";
            value = compile {
              inherit pkgs;
              devices = exampleLayouts.${name};
              checkScripts = true;
              package = p.disko-compile;
            };
          }) (builtins.attrNames exampleLayouts)
        )
        // {
          module-eval =
            let
              nixos = nixpkgs.lib.nixosSystem {
                modules = [
                  ./module.nix
                  ../examples/disk-config.nix
                  ../examples/configuration.nix
                  {
                    nixpkgs.hostPlatform = system;
                    disko.package = p.disko-compile;
                  }
                ];
              };
            in
            pkgs.runCommand "module-eval" {
              fileSystems = builtins.toJSON (builtins.attrNames nixos.config.fileSystems);
              luks = builtins.toJSON (builtins.attrNames nixos.config.boot.initrd.luks.devices);
              diskoScript = nixos.config.system.build.diskoScript;
              mountScript = nixos.config.system.build.mountScriptNoDeps;
            } ''echo "$fileSystems $luks" > "$out"'';
        };
    in
    {
      inherit (p)
        disko
        disko-install
        disko-compile
        anywhere
        ;
    }
    // (if isLinux system then linuxChecks else { })
  );

  devShells = forAll (
    system:
    let
      pkgs = pkgsFor system;
    in
    {
      default = pkgs.mkShell {
        packages = [
          (pkgs.${"go_" + builtins.replaceStrings [ "." ] [ "_" ] (pure.goVersion (builtins.readFile ../go.mod))} or pkgs.go)
          pkgs.shellcheck
          pkgs.jq
        ];
      };
    }
  );
}
