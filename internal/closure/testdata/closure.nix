# A small closure exercising every NAR node type: nested directories, an
# executable, a symlink, an empty file, names that sort differently by byte
# and by locale, and a runtime reference. PATH is empty in builds and the
# sandbox is off, hence absolute tool paths.
{ salt ? "closure-test" }:
let
  system = "x86_64-linux";
  leaf = derivation {
    name = "closure-leaf";
    inherit system salt;
    builder = "/bin/sh";
    args = [ "-c" ''
      /bin/mkdir -p $out/dir/sub $out/Upper
      /bin/echo leaf > $out/dir/sub/file
      : > $out/empty
      /bin/printf '#!/bin/sh\necho hi\n' > $out/run
      /bin/chmod +x $out/run
      /bin/ln -s dir/sub/file $out/link
      /bin/echo a > $out/Upper/b
      /bin/echo z > $out/_under
    '' ];
  };
in
derivation {
  name = "closure-root";
  inherit system salt;
  builder = "/bin/sh";
  args = [ "-c" "/bin/mkdir $out && /bin/echo ${leaf} > $out/ref && /bin/ln -s ${leaf}/run $out/run" ];
}
