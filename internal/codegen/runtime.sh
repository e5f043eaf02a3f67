# --- runtime: what this script uses of internal/codegen/runtime.sh ---
# Arguments are data, never code: every caller passes quoted words, and everything read
# from disks (labels, names) is printed with %q. After a change here, run
# `go test ./internal/codegen -run TestRuntimeIndex -update` (scripts carry only the parts they use).

: "${DISKO_DEVICE_TIMEOUT:=30}"

disko_log() { printf 'disko: %s\n' "$*" >&2; }

disko_die() {
  printf 'disko: error: %s\n' "$*" >&2
  exit 1
}

# udev is running when its control socket answers (a socket alone may be left over from a
# udevd that was killed). Without udev (containers, this project's test machines) nothing
# creates /dev/disk/by-* links, so devices are found through sysfs and blkid instead (see
# disko_dev). The question is asked in the background while the script starts;
# disko_udev_known collects the answer, before anything runs in a subshell.
disko_udev='' disko_udev_ping=''
if [ -S /run/udev/control ]; then
  udevadm control --ping >/dev/null 2>&1 &
  disko_udev_ping=$!
fi
disko_udev_known() {
  if [ -n "$disko_udev_ping" ]; then
    if wait "$disko_udev_ping"; then disko_udev=1; fi
    disko_udev_ping=''
  fi
}

# disko_sleep: wait 10 ms without starting a process (a `sleep` costs ~0.1 s under
# emulation, which made every poll ten times longer than asked): read times out on a
# pipe that nothing writes, opened once per shell.
disko_sleep_fd=''
disko_sleep() {
  [ -n "$disko_sleep_fd" ] || exec {disko_sleep_fd}<> <(:)
  read -r -t 0.01 -u "$disko_sleep_fd" _ || :
}

# disko_resolve PATH: sets disko_node to the kernel's node (/dev/NAME) of the block device
# PATH names (a link such as /dev/md/NAME or /dev/VG/LV), found by comparing PATH with the
# node of every block device the kernel shows rather than by running readlink (a process
# start costs ~0.1 s under emulation); readlink -f when no node matches.
disko_resolve() {
  local k
  for k in /sys/class/block/*; do
    if [ "$1" -ef "/dev/${k##*/}" ]; then
      disko_node=/dev/${k##*/}
      return 0
    fi
  done
  disko_node=$(readlink -f -- "$1")
}

# disko_part_node DISK N: sets disko_node to the kernel's node for partition N of the
# resolved node DISK, read from sysfs (a partition is a child directory of its disk with a
# `partition` file); empty when the kernel does not show the partition (yet).
disko_part_node() {
  local k=${1##*/} p n
  disko_node=
  for p in /sys/class/block/"$k"/"$k"*/partition; do
    [ -r "$p" ] || continue
    read -r n <"$p" || continue
    if [ "$n" = "$2" ]; then
      p=${p%/partition}
      [ -b "/dev/${p##*/}" ] && disko_node=/dev/${p##*/}
      return 0
    fi
  done
}

# disko_part VAR DISK N: sets VAR to the kernel's node for partition N of DISK, which
# disko_gpt or disko_table made the kernel show.
disko_part() {
  disko_part_node "$2" "$3"
  [ -n "$disko_node" ] || disko_die "$(printf 'the kernel does not show partition %s of %q' "$3" "$2")"
  printf -v "$1" '%s' "$disko_node"
}

# disko_part_nodes DISK: sets disko_nodes[N] to the node of every partition N of DISK the
# kernel shows, in one pass over sysfs.
declare -A disko_nodes=()
disko_part_nodes() {
  local k=${1##*/} p n
  disko_nodes=()
  for p in /sys/class/block/"$k"/"$k"*/partition; do
    [ -r "$p" ] || continue
    read -r n <"$p" || continue
    p=${p%/partition}
    [ ! -b "/dev/${p##*/}" ] || disko_nodes[$n]=/dev/${p##*/}
  done
}

# disko_tag_node PATH: for /dev/disk/by-{partlabel,partuuid,uuid,label}/X, sets disko_node to
# the one device blkid finds with that tag (X unescaped the way udev escapes it: \x20 is a
# space); empty when there is none. Several devices with the tag are an error: no link
# could say which one is meant.
disko_tag_node() {
  local key val found
  disko_node=
  case $1 in
  /dev/disk/by-partlabel/*) key=PARTLABEL ;;
  /dev/disk/by-partuuid/*) key=PARTUUID ;;
  /dev/disk/by-uuid/*) key=UUID ;;
  /dev/disk/by-label/*) key=LABEL ;;
  *) return 0 ;;
  esac
  printf -v val '%b' "${1##*/}"
  found=$(blkid -c /dev/null -o device -t "$key=$val" 2>/dev/null) || return 0
  case $found in
  *$'\n'*) disko_die "$(printf 'several devices carry %s=%q: %s' "$key" "$val" "${found//$'\n'/ }")" ;;
  esac
  disko_node=$found
}

# disko_dev VAR PATH [PARENT N]: sets VAR to the device node PATH names, waiting up to
# $DISKO_DEVICE_TIMEOUT seconds for it to appear. With PARENT (a resolved node) and N, PATH
# is partition N of PARENT: the node is taken from sysfs, and when udev runs, the function
# also waits until PATH is a link to that very node, so that a stale link, or another
# disk's partition with the same label, is never used, and whatever reads PATH later finds
# it. Without udev there are no links: the sysfs node (or, for a tag path without a
# parent, what blkid finds) is the answer.
disko_dev() {
  local var=$1 path=$2 parent=${3:-} n=${4:-} deadline
  deadline=$((SECONDS + DISKO_DEVICE_TIMEOUT))
  while :; do
    if [ -n "$parent" ]; then
      disko_part_node "$parent" "$n"
      if [ -n "$disko_node" ] && { [ -z "$disko_udev" ] || [ "$path" -ef "$disko_node" ]; }; then
        printf -v "$var" '%s' "$disko_node"
        return 0
      fi
    elif [ -e "$path" ]; then
      disko_node=$path
      [ ! -L "$path" ] || disko_resolve "$path"
      printf -v "$var" '%s' "$disko_node"
      return 0
    elif [ -z "$disko_udev" ]; then
      disko_tag_node "$path"
      if [ -n "$disko_node" ]; then
        printf -v "$var" '%s' "$disko_node"
        return 0
      fi
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      [ -z "${disko_dev_soft:-}" ] || return 1
      if [ -n "$parent" ]; then
        disko_die "$(printf 'timed out after %ss waiting for %q (partition %s of %q; kernel node: %q; the link points to: %q; udev running: %s); set DISKO_DEVICE_TIMEOUT to wait longer' \
          "$DISKO_DEVICE_TIMEOUT" "$path" "$n" "$parent" "${disko_node:-none}" "$(readlink -f -- "$path" 2>/dev/null || echo nothing)" "${disko_udev:-no}")"
      fi
      disko_die "$(printf 'timed out after %ss waiting for %q (udev running: %s); set DISKO_DEVICE_TIMEOUT to wait longer' \
        "$DISKO_DEVICE_TIMEOUT" "$path" "${disko_udev:-no}")"
    fi
    disko_sleep
  done
}

# disko_dev_now VAR PATH [PARENT N]: like disko_dev, without waiting; fails when the device
# is not there. Unmounting uses it: a device that is gone has nothing mounted.
disko_dev_now() {
  local disko_dev_soft=1 DISKO_DEVICE_TIMEOUT=0
  disko_dev "$@"
}

# disko_blkid DEV: blkid's low-level probe of DEV into disko_type, disko_pttype,
# disko_label and disko_uuid (empty when not found); disko_odd holds blkid's words when it
# cannot tell what DEV holds (several signatures). A partition shows PART_ENTRY_* values
# (its place in the table) even when blank; they say nothing about its content.
disko_blkid() {
  local out rc=0 line
  disko_type='' disko_pttype='' disko_label='' disko_uuid='' disko_odd=''
  out=$(blkid -p -o export -- "$1" 2>&1) || rc=$?
  case $rc in
  0) ;;
  2) return 0 ;;
  *)
    disko_odd=${out//$'\n'/ }
    return 0
    ;;
  esac
  while IFS= read -r line; do
    case $line in
    TYPE=*) disko_type=${line#TYPE=} ;;
    PTTYPE=*) disko_pttype=${line#PTTYPE=} ;;
    LABEL=*) disko_label=${line#LABEL=} ;;
    UUID=*) disko_uuid=${line#UUID=} ;;
    esac
  done <<<"$out"
}

# disko_describe: what disko_blkid found, in words for a message ("ext4 LABEL=x UUID=...",
# "gpt partition table"); nothing for a blank device.
disko_describe() {
  if [ -n "$disko_odd" ]; then
    printf 'signatures blkid cannot tell apart (%q)' "$disko_odd"
  elif [ -n "$disko_type" ]; then
    printf '%q' "$disko_type"
    [ -z "$disko_label" ] || printf ' LABEL=%q' "$disko_label"
    [ -z "$disko_uuid" ] || printf ' UUID=%q' "$disko_uuid"
  elif [ -n "$disko_pttype" ]; then
    printf '%q partition table' "$disko_pttype"
  fi
}

# disko_probe DEV: disko_describe for DEV.
disko_probe() {
  disko_blkid "$1"
  disko_describe
}

# disko_refuse DEV WHAT OPTPATH FOUND: the message for a device that holds data this layout
# did not create.
disko_refuse() {
  disko_die "$(printf 'refusing to create %s on %q (%s): it already holds %s. The format script only creates what is missing and never overwrites data it did not create; to wipe the disks, run the destroy script (or the destroy,format,mount mode)' \
    "$2" "$1" "$3" "$4")"
}

# shellcheck disable=SC2034 # disko_dev sets it where the generated code only waits
disko_seen=''

# Partitions this run created and found blank (see disko_fresh_parts): their content is
# created without probing them again.
declare -A disko_blank=()

# disko_want DEV TYPE OPTPATH: succeeds when DEV is blank and TYPE must be created; fails
# (status 1) when DEV already holds TYPE, which is kept; exits when DEV holds anything else.
disko_want() {
  if [ -n "${disko_blank[$1]+x}" ]; then
    unset 'disko_blank[$1]'
    return 0
  fi
  ! disko_new "$1" || return 0
  disko_blkid "$1"
  if [ -z "$disko_type$disko_pttype$disko_odd" ]; then
    return 0
  fi
  if [ -z "$disko_odd" ] && [ "$disko_type" = "$2" ]; then
    return 1
  fi
  disko_refuse "$1" "$2" "$3" "$(disko_describe)"
}

# disko_pin DISK FRESH N...: make the kernel show partitions N... of DISK and keep one of
# them open until disko_unpin. partx adds them from the table on the disk, which works
# where a re-read does nothing (a kernel without a parser for the table, as on this
# project's test machines) and where partitions are in use; FRESH (non-empty) first drops
# what the kernel remembers of an older table, so that udev sees every partition appear,
# unless the kernel already shows just the table disko_gpt wrote (disko_written: udev
# re-read it when sfdisk closed the disk), which saves two partx runs.
# The open partition makes the kernel refuse to re-read the table (EBUSY): udev re-reads
# it when a partitioning tool closes the disk, which drops the partitions again on a
# kernel that cannot parse the table, and races with the commands that follow on any
# kernel; refused, udev announces the partitions as changed instead. A lock on the disk
# (systemd's protocol) would keep udev from touching the partitions at all until the end,
# and delay every link by its 200 ms retry.
disko_pins=()
declare -A disko_written=()
disko_pin() {
  local disk=$1 fresh=$2 n fd missing deadline retry
  shift 2
  deadline=$((SECONDS + DISKO_DEVICE_TIMEOUT))
  retry=$((SECONDS + 1))
  disko_part_nodes "$disk"
  if [ -n "$fresh" ] && ((${#disko_nodes[@]})) && ! disko_shows_written; then
    partx -d "$disk" 2>/dev/null || :
    disko_part_nodes "$disk"
  fi
  while :; do
    missing=''
    for n in "$@"; do [ -n "${disko_nodes[$n]:-}" ] || missing+=" $n"; done
    if [ -n "$missing" ]; then
      # Adds what the kernel does not show; fails (harmlessly) for what it does.
      partx -a "$disk" 2>/dev/null || :
      disko_part_nodes "$disk"
      missing=''
      for n in "$@"; do [ -n "${disko_nodes[$n]:-}" ] || missing+=" $n"; done
    fi
    if [ -z "$missing" ]; then
      if { exec {fd}<"${disko_nodes[$1]}"; } 2>/dev/null; then
        # Opened: nothing can drop the partitions any more. Were they all still there?
        disko_part_nodes "$disk"
        for n in "$@"; do [ -n "${disko_nodes[$n]:-}" ] || missing+=" $n"; done
        if [ -z "$missing" ]; then
          disko_pins+=("$fd")
          return 0
        fi
        exec {fd}<&-
      elif ((SECONDS > retry)); then
        # Shown but not openable (a node of a partition that is being replaced): have
        # the kernel forget and re-add the partitions, once a second.
        retry=$SECONDS
        partx -d "$disk" 2>/dev/null || :
        partx -a "$disk" 2>/dev/null || :
        disko_part_nodes "$disk"
      fi
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      [ -z "$missing" ] || disko_die "$(printf 'the kernel does not show partition(s)%s of %q after %ss (partx -a failed)' "$missing" "$disk" "$DISKO_DEVICE_TIMEOUT")"
      disko_die "$(printf 'cannot open partition %s of %q (%q) after %ss: %s' "$1" "$disk" "${disko_nodes[$1]}" "$DISKO_DEVICE_TIMEOUT" "$( { exec 3<"${disko_nodes[$1]}"; } 2>&1)")"
    fi
    disko_sleep
  done
}

# disko_shows_written: the partitions the kernel shows (disko_nodes) are exactly those in
# disko_written (N -> "START SIZE" in 512-byte units, as sysfs counts).
disko_shows_written() {
  local n start size
  ((${#disko_nodes[@]} == ${#disko_written[@]})) || return 1
  for n in "${!disko_nodes[@]}"; do
    [ -n "${disko_written[$n]+x}" ] || return 1
    read -r start <"/sys/class/block/${disko_nodes[$n]##*/}/start" || return 1
    read -r size <"/sys/class/block/${disko_nodes[$n]##*/}/size" || return 1
    [ "$start $size" = "${disko_written[$n]}" ] || return 1
  done
}

# disko_unpin: close the partitions disko_pin kept open.
disko_unpin() {
  local fd
  for fd in "${disko_pins[@]}"; do
    exec {fd}<&-
  done
  disko_pins=()
}

# disko_pristine DISK: the first and the last MiB of DISK are all zeros (a new disk, or
# one the destroy script wiped). Then blkid could find nothing on the whole disk (every
# signature it looks for lies there: superblocks near the start, md and ZFS labels and
# the backup GPT near the end), and no partition table was ever there (wipefs leaves a
# table's entries), so no partition of an older layout can have left data where new
# partitions go: the format probes neither the disk nor what it builds there. Checked
# before the table is written. Both ends are read into one command substitution, which
# drops NUL bytes (bash's warning about them goes to /dev/null, the readers' errors to
# stderr): what is left before the closing mark is every byte that was not zero. Two
# programs besides the substitution's subshell, and no byte-by-byte compare (busybox's
# cmp takes about 55 ms a MiB under qemu's TCG); head and tail take -c in GNU and
# busybox alike, and tail seeks to the end.
disko_pristine() {
  local k=${1##*/} bytes mib=1048576 left
  read -r bytes <"/sys/class/block/$k/size"
  bytes=$((bytes * 512 < mib ? bytes * 512 : mib))
  { left=$(head -c "$bytes" -- "$1" 2>&3 && tail -c "$bytes" -- "$1" 2>&3 && echo .) || return 1; } 3>&2 2>/dev/null
  [ "$left" = . ]
}

# disko_fresh_parts DISK PRISTINE N...: partitions N of DISK were just created. Unless the
# disk was PRISTINE (non-empty), one blkid run probes them all, and stale signatures (of an
# older layout at the same offsets, which would make mkfs refuse or blkid misreport) are
# wiped; nobody's data is lost, since the partitions did not exist before. They are then
# known blank.
disko_fresh_parts() {
  local disk=$1 pristine=$2 n line dev='' out='' rc=2
  local -a nodes=() stale=()
  local -A used=()
  disko_part_nodes "$disk"
  for n in "${@:3}"; do
    nodes+=("${disko_nodes[$n]}")
  done
  [ -n "$pristine" ] || out=$(blkid -p -o export "${nodes[@]}" 2>/dev/null) || rc=$?
  while IFS= read -r line; do
    case $line in
    DEVNAME=*) dev=${line#DEVNAME=} ;;
    TYPE=* | PTTYPE=*) [ -z "$dev" ] || used[$dev]=1 ;;
    esac
  done <<<"$out"
  for n in "${nodes[@]}"; do
    # blkid fails (other than "nothing found") on signatures it cannot tell apart: wipe.
    if [ -n "${used[$n]+x}" ] || ((rc != 0 && rc != 2)); then
      stale+=("$n")
    fi
    disko_blank[$n]=1
  done
  if ((${#stale[@]})); then
    wipefs --all --quiet "${stale[@]}"
  fi
}

# --- GPT: disko's sgdisk placement, written with one sfdisk call ---
# disko creates each partition with its own `sgdisk --align-end --new=N:START:END` call.
# The functions below compute the sectors those calls would choose (sgdisk 1.0.9 rules:
# "0" is the first aligned sector of the largest free block, +X counts from the start,
# -X from the end of that block, ends given relative to the block end are aligned down),
# so that one sfdisk script can create every partition at once.

disko_ss=0 disko_first=0 disko_last=0 disko_r=0 disko_fresh=
disko_us=() disko_ue=()

disko_gpt_free() { # S E: sectors S..E are usable and unused
  local i
  ((${1} >= disko_first && ${2} <= disko_last && ${1} <= ${2})) || return 1
  for i in "${!disko_us[@]}"; do
    ((${2} < disko_us[i] || ${1} > disko_ue[i])) || return 1
  done
}

disko_gpt_last_in_free() { # S -> disko_r: the last sector of the free block holding S
  local i
  disko_r=$disko_last
  for i in "${!disko_us[@]}"; do
    if ((disko_us[i] > ${1} && disko_us[i] - 1 < disko_r)); then
      disko_r=$((disko_us[i] - 1))
    fi
  done
}

disko_gpt_first_free() { # S -> disko_r: the first free sector at or after S, 0 if none
  local i moved=1
  disko_r=$((${1} > disko_first ? ${1} : disko_first))
  while ((moved)); do
    moved=0
    for i in "${!disko_us[@]}"; do
      if ((disko_r >= disko_us[i] && disko_r <= disko_ue[i])); then
        disko_r=$((disko_ue[i] + 1))
        moved=1
      fi
    done
  done
  ((disko_r <= disko_last)) || disko_r=0
}

disko_gpt_first_in_largest() { # -> disko_r
  local start=0 best=0 sel=0 fb
  while :; do
    disko_gpt_first_free "$start"
    fb=$disko_r
    ((fb)) || break
    disko_gpt_last_in_free "$fb"
    if ((disko_r - fb + 1 > best)); then
      best=$((disko_r - fb + 1))
      sel=$fb
    fi
    start=$((disko_r + 1))
  done
  disko_r=$sel
}

disko_gpt_align() { # S A -> disko_r: S moved to a multiple of A, earlier if free, else later
  local s=$1 a=$2 later earlier
  disko_r=$s
  ((a > 1 && s % a != 0)) || return 0
  later=$(((s / a + 1) * a))
  earlier=$((later - a))
  if disko_gpt_free "$earlier" $((s - 1)); then
    disko_r=$earlier
    return 0
  fi
  disko_gpt_last_in_free "$s"
  if ((later <= disko_r)) && disko_gpt_free $((s + 1)) "$later"; then
    disko_r=$later
  else
    disko_r=$s
  fi
}

disko_gpt_value() { # SPEC LOW HIGH DEF -> disko_r (sgdisk's IeeeToInt; SPEC is 0 or SIGN:V:UNITBYTES)
  local sign v unit
  if [ "$1" = 0 ]; then
    disko_r=$4
    return 0
  fi
  sign=${1%%:*}
  v=${1#*:}
  unit=${v#*:}
  v=${v%%:*}
  if ((unit > 0)); then
    if ((unit >= disko_ss)); then v=$((v * (unit / disko_ss))); else v=$((v / (disko_ss / unit))); fi
  fi
  case $sign in
  +)
    if (($4 == $3)); then
      disko_r=$((${2} + (v > 0 ? v - 1 : 0)))
    else
      disko_r=$((${4} + v))
    fi
    ;;
  -) disko_r=$((v > ${3} ? 0 : ${3} - v)) ;;
  *) disko_r=$v ;;
  esac
}

# disko_gpt_place START END ALIGN -> disko_r "S E" (0 0 when sgdisk would fail); marks the
# range used.
disko_gpt_place() {
  local a=$3 low high s e i
  if ((a == 0)); then
    a=$((1048576 / disko_ss))
    ((a > 0)) || a=1
    for i in "${!disko_us[@]}"; do
      while ((a > 1 && disko_us[i] % a != 0)); do a=$((a / 2)); done
    done
  fi
  disko_gpt_first_in_largest
  disko_gpt_align "$disko_r" "$a"
  low=$disko_r
  disko_gpt_last_in_free "$low"
  high=$disko_r
  disko_gpt_value "$1" "$low" "$high" "$low"
  s=$disko_r
  disko_gpt_value "$2" "$s" "$high" "$high"
  e=$disko_r
  case $2 in
  0 | -:*) if ((a > 1 && (e + 1) % a != 0 && ((e + 1) / a) * a - 1 >= s)); then e=$((((e + 1) / a) * a - 1)); fi ;;
  esac
  disko_gpt_align "$s" "$a"
  s=$disko_r
  disko_gpt_last_in_free "$s"
  if ((s == 0)) || ! disko_gpt_free "$s" "$s" || ((s > e || disko_r < e)); then
    disko_r="0 0"
    return 0
  fi
  disko_us+=("$s")
  disko_ue+=("$e")
  disko_r="$s $e"
}

# disko_gpt_geometry DISK: sector size and usable range of DISK (a protective MBR, then a
# header and 128 entries of 128 bytes at each end, as sgdisk and sfdisk write), from sysfs.
disko_gpt_geometry() {
  local k=${1##*/} size
  read -r disko_ss <"/sys/class/block/$k/queue/logical_block_size"
  read -r size <"/sys/class/block/$k/size" # in 512-byte units, whatever the sector size
  disko_first=$((2 + (16384 + disko_ss - 1) / disko_ss))
  disko_last=$((size * 512 / disko_ss - disko_first))
  disko_us=()
  disko_ue=()
}

# disko_gpt_known: the reading half of disko_gpt, in its variables (disk where specs;
# sets pristine, found, have_*, and the geometry): refuses a disk that holds anything but
# blank space or this layout's GPT. The preflight (disko_need_disk) runs it too.
disko_gpt_known() {
  local spec n start end align type uuid attrs b64 name line size i
  found=''
  if [ -n "${disko_pristine_known[$disk]+x}" ] || disko_pristine "$disk"; then
    pristine=1
  elif disko_new "$disk"; then
    : # a new md array or mapping: blank, though not pristine
  else
    disko_blkid "$disk"
    found=$disko_type$disko_pttype$disko_odd
    if [ -n "$found" ] && [ "$found" != gpt ]; then
      disko_refuse "$disk" "a GPT partition table" "$where" "$(disko_describe)"
    fi
  fi
  disko_gpt_geometry "$disk"
  if [ -n "$found" ]; then
    while IFS=' ' read -r n start size type b64; do
      [ -n "$n" ] || continue
      have[$n]=${#have_n[@]}
      have_n+=("$n") have_start+=("$start") have_size+=("$size") have_type+=("$type") have_name+=("$b64")
    done < <(sfdisk --json -- "$disk" | jq -r '.partitiontable.partitions[]? | "\(.node | capture("(?<n>[0-9]+)$").n) \(.start) \(.size) \(.type) \(.name // "" | @base64)"')
    for spec in "${specs[@]}"; do
      read -r n start end align type uuid attrs b64 name <<<"$spec"
      if [ -n "${have[$n]+x}" ]; then
        i=${have[$n]}
        if [ "${have_name[i]}" != "$b64" ]; then
          disko_refuse "$disk" "a GPT partition table" "$where" "$(printf 'a GPT whose partition %s is named %q, not %q' "$n" "$(printf '%s' "${have_name[i]}" | base64 -d)" "$(printf '%s' "$b64" | base64 -d)")"
        fi
        if [ "${have_type[i]^^}" != "$type" ]; then
          disko_log "$(printf 'keeping partition %s of %q with type %s (the layout says %s)' "$n" "$disk" "${have_type[i]}" "$type")"
        fi
        unset 'have[$n]'
      fi
    done
    if ((${#have[@]})); then
      for n in "${!have[@]}"; do
        line+=" $n=$(printf '%q' "$(printf '%s' "${have_name[${have[$n]}]}" | base64 -d)")"
      done
      disko_refuse "$disk" "a GPT partition table" "$where" "a GPT with partitions this layout does not create:$line"
    fi
    for n in "${!have_n[@]}"; do
      disko_us+=("${have_start[n]}")
      disko_ue+=($((have_start[n] + have_size[n] - 1)))
    done
  fi
}

# disko_gpt DISK OPTPATH SPEC...: make sure DISK holds the GPT of the layout.
# Each SPEC is "N START END ALIGN TYPE UUID|- ATTRS|- NAME_BASE64 NAME_SFDISK", START and END
# in disko_gpt_value's syntax. A blank disk gets the whole table in one sfdisk write; a disk
# with this layout's GPT keeps it (partitions the layout gained are added into free space);
# anything else is refused.
disko_gpt() {
  local disk=$1 where=$2 found spec n start end align type uuid attrs b64 name line i pristine=''
  local -a specs=("${@:3}") have_n=() have_name=() have_type=() have_start=() have_size=() new=() script=()
  local -A have=()
  disko_fresh=
  disko_written=()
  disko_gpt_known
  for spec in "${specs[@]}"; do
    read -r n start end align type uuid attrs b64 name <<<"$spec"
    if [ -n "$found" ]; then
      local existed=
      for i in "${!have_n[@]}"; do [ "${have_n[i]}" = "$n" ] && existed=1; done
      [ -z "$existed" ] || continue
    fi
    disko_gpt_place "$start" "$end" "$align"
    if [ "$disko_r" = "0 0" ]; then
      disko_die "$(printf 'partition %s of %q (%s) does not fit: start %s, end %s on a disk of %s sectors of %s bytes' "$n" "$disk" "$where" "$start" "$end" "$((disko_last + 1))" "$disko_ss")"
    fi
    line="start=${disko_r% *}, size=$((${disko_r#* } - ${disko_r% *} + 1)), type=$type, name=\"$name\""
    disko_written[$n]="$((${disko_r% *} * disko_ss / 512)) $(((${disko_r#* } - ${disko_r% *} + 1) * disko_ss / 512))"
    [ "$uuid" = - ] || line+=", uuid=$uuid"
    [ "$attrs" = - ] || line+=", attrs=\"$attrs\""
    new+=("$n")
    script+=("$line")
  done
  local -a all=()
  for spec in "${specs[@]}"; do all+=("${spec%% *}"); done
  if ((${#new[@]} == 0)); then
    # The table is complete; a kernel that cannot parse it (or a disk attached without
    # partition scanning) may still not show the partitions.
    disko_pin "$disk" "" "${all[@]}"
    return 0
  fi
  if [ -z "$found" ]; then
    # shellcheck disable=SC2034 # read by the generated hybrid-MBR step
    disko_fresh=1
    disko_log "$(printf 'writing a GPT with %s partitions to %q (%s)' "${#new[@]}" "$disk" "$where")"
    printf '%s\n' "label: gpt" "first-lba: $disko_first" "last-lba: $disko_last" "${script[@]}" |
      sfdisk --quiet --no-reread --no-tell-kernel --wipe never -- "$disk" >/dev/null
  else
    for i in "${!new[@]}"; do
      disko_log "$(printf 'adding partition %s to %q (%s)' "${new[i]}" "$disk" "$where")"
      printf '%s\n' "${script[i]}" |
        sfdisk --quiet --no-reread --no-tell-kernel --wipe never -N "${new[i]}" -- "$disk" >/dev/null
    done
  fi
  disko_pin "$disk" "$disko_fresh" "${all[@]}"
  disko_fresh_parts "$disk" "$pristine" "${new[@]}"
}

# disko_table_known: the reading half of disko_table, in its variables (disk where format
# id; sets pristine and found): refuses a disk that holds anything but blank space or this
# layout's table. The preflight (disko_need_disk) runs it too.
disko_table_known() {
  local label=$format have
  [ "$format" = msdos ] && label=dos
  found=''
  if [ -n "${disko_pristine_known[$disk]+x}" ] || disko_pristine "$disk"; then
    pristine=1
    return 0
  fi
  ! disko_new "$disk" || return 0
  disko_blkid "$disk"
  found=$disko_type$disko_pttype$disko_odd
  [ -n "$found" ] || return 0
  [ "$found" = "$label" ] || disko_refuse "$disk" "an $format partition table" "$where" "$(disko_describe)"
  have=$(sfdisk --disk-id -- "$disk")
  if [ "${have,,}" != "${id,,}" ]; then
    disko_refuse "$disk" "an $format partition table" "$where" "$(printf 'an %s partition table with identifier %q, not this layout'"'"'s %s' "$format" "$have" "$id")"
  fi
}

# disko_table DISK OPTPATH FORMAT ID NUMBERS FILLED PARTED_ARGS...: the legacy table type (NUMBERS
# are its partitions, FILLED those that are not extended partitions), written by one
# parted run (parted's units, percentages and alignment have no sfdisk equivalent). A
# table is recognised as this layout's by its disk identifier ID, which is set right after
# parted wrote it.
disko_table() {
  local disk=$1 where=$2 format=$3 id=$4 found pristine=''
  disko_table_known
  if [ -n "$found" ]; then
    # shellcheck disable=SC2086 # the partition numbers are one word of digits and spaces
    disko_pin "$disk" "" $5
    return 0
  fi
  disko_log "$(printf 'writing an %s partition table to %q (%s)' "$format" "$disk" "$where")"
  parted --script -- "$disk" "${@:7}" >/dev/null
  sfdisk --quiet --no-reread --no-tell-kernel --disk-id -- "$disk" "$id" >/dev/null
  # parted told the kernel about the partitions (udev may have made it forget them again).
  # shellcheck disable=SC2086 # the partition numbers are one word of digits and spaces
  disko_pin "$disk" "" $5
  # shellcheck disable=SC2086 # the partition numbers are one word of digits and spaces
  disko_fresh_parts "$disk" "$pristine" $6
}

# --- preflight: what must hold before anything is written on any disk ---
# Disks are formatted in parallel, so a disk that fails halfway would leave the others
# formatted and itself not: the layout neither old nor new. Every script first checks
# what it can know beforehand (each tool on PATH, a terminal for passphrases, each disk
# there, big enough, and holding nothing this layout did not make) and reports every
# problem at once; only when all hold does anything change.

disko_problems=0
disko_check_pids=()

# disko_problem MESSAGE: report a failed precondition (disko_checked stops the script).
disko_problem() {
  printf 'disko: error: %s\n' "$*" >&2
  disko_problems=$((disko_problems + 1))
}

# disko_need_tools COMMAND:DEBIAN:NIXPKGS...: each command the script runs is on PATH
# (DEBIAN and NIXPKGS name the packages that have it, when known).
disko_need_tools() {
  local spec cmd deb nix hint
  for spec in "$@"; do
    IFS=: read -r cmd deb nix <<<"$spec"
    command -v "$cmd" >/dev/null 2>&1 && continue
    hint=''
    [ -z "$deb" ] || hint=" (Debian package $deb, nixpkgs $nix)"
    disko_problem "$(printf '%q is not on PATH%s; this script runs it' "$cmd" "$hint")"
  done
}

# disko_check FUNCTION ARG...: run a check as a background job (checks of several disks
# wait for their devices at the same time); disko_checked collects the outcome.
disko_check_disks=()
disko_check() {
  "$@" </dev/null &
  disko_check_pids+=("$!")
  if [ "$1" = disko_need_disk ]; then disko_check_disks+=("$2"); else disko_check_disks+=(''); fi
}

# disko_checked: stop, having changed nothing, when any precondition failed. A disk check
# that holds and found its disk pristine says so by its status (disko_pristine_rc, which no
# command it runs returns): the disk goes into disko_pristine_known, so that the format
# neither reads it again nor probes what it builds there (see disko_new).
disko_pristine_rc=10
declare -A disko_pristine_known=()
disko_checked() {
  local i rc node
  for i in "${!disko_check_pids[@]}"; do
    rc=0
    wait "${disko_check_pids[i]}" || rc=$?
    if ((rc == disko_pristine_rc)) && [ -n "${disko_check_disks[i]}" ]; then
      # shellcheck disable=SC2034 # read by disko_new and the table writers, which only format scripts include
      disko_dev_now node "${disko_check_disks[i]}" && disko_pristine_known[$node]=1
    elif ((rc != 0)); then
      disko_problems=$((disko_problems + 1))
    fi
  done
  disko_check_pids=() disko_check_disks=()
  ((disko_problems == 0)) || disko_die "$disko_problems precondition(s) failed (see above); nothing was written on any disk"
}

# disko_new DEV: DEV (a kernel node) was made by this run from nothing: a partition of a
# disk the preflight found pristine (this run wrote its whole table), or a device built
# only on such devices (an md array, a LUKS mapping, a logical volume, through sysfs
# slaves). Nothing needs probing there: no older volume group can hold it, and what is
# built on it is blank (disko_fresh_parts' reasoning; a LUKS mapping shows random bytes,
# lvcreate wipes signatures, a new md array is wiped once).
disko_new() {
  local k=${1##*/} d s found=''
  ((${#disko_pristine_known[@]})) || return 1
  for d in "${!disko_pristine_known[@]}"; do
    [ ! -e "/sys/class/block/${d##*/}/$k/partition" ] || return 0
  done
  for s in /sys/class/block/"$k"/slaves/*; do
    [ -e "$s" ] || return 1
    disko_new "/dev/${s##*/}" || return 1
    found=1
  done
  [ -n "$found" ]
}

# disko_mib BYTES [up]: BYTES in MiB for a message (rounded down, or up with "up").
disko_mib() {
  local mib=1048576
  if [ "${2:-}" = up ]; then
    printf '%s MiB' $((($1 + mib - 1) / mib))
  else
    printf '%s MiB' $(($1 / mib))
  fi
}

# disko_need_disk PATH OPTPATH MODE MIN NEEDS KIND ARG...: disk PATH of the layout exists
# (waited for), has at least MIN bytes (NEEDS says for what, in the layout's terms) and,
# with MODE keep (a format that must not destroy), holds nothing this layout did not make.
# KIND says what the layout puts on it: gpt SPEC... (also placed for real on a blank
# disk, as disko_gpt will), table FORMAT ID, type BLKIDTYPE (content on the whole disk).
disko_need_disk() {
  local path=$1 where=$2 mode=$3 min=$4 needs=$5 kind=$6 disk='' bytes disko_dev_soft=1
  local found='' pristine='' format id spec n start end align type uuid attrs b64 name
  local -a specs=() have_n=() have_name=() have_type=() have_start=() have_size=()
  local -A have=()
  shift 6
  disko_dev disk "$path" || disko_die "$(printf '%s: %q does not exist (waited %ss; set DISKO_DEVICE_TIMEOUT to wait longer)' "$where" "$path" "$DISKO_DEVICE_TIMEOUT")"
  read -r bytes <"/sys/class/block/${disk##*/}/size"
  bytes=$((bytes * 512))
  if ((bytes < min)); then
    disko_die "$(printf '%s: %q is %s, the layout needs at least %s (%s)' "$where" "$path" "$(disko_mib "$bytes")" "$(disko_mib "$min" up)" "$needs")"
  fi
  where=$where.content
  case $kind in
  gpt)
    specs=("$@")
    if [ "$mode" = keep ]; then
      disko_gpt_known
    else
      disko_gpt_geometry "$disk"
    fi
    [ -z "$found" ] || return 0
    for spec in "${specs[@]}"; do
      read -r n start end align type uuid attrs b64 name <<<"$spec"
      disko_gpt_place "$start" "$end" "$align"
      if [ "$disko_r" = "0 0" ]; then
        disko_die "$(printf '%s: %q is %s, too small for the layout (%s): partition %s (%q) does not fit' "${where%.content}" "$path" "$(disko_mib "$bytes")" "$needs" "$n" "$(printf '%s' "$b64" | base64 -d)")"
      fi
    done
    ;;
  table)
    format=$1 id=$2
    [ "$mode" != keep ] || disko_table_known
    ;;
  type)
    [ "$mode" = keep ] || return 0
    disko_blkid "$disk"
    if [ -n "$disko_type$disko_pttype$disko_odd" ] && { [ -n "$disko_odd" ] || [ "$disko_type" != "$1" ]; }; then
      disko_refuse "$disk" "$1" "$where" "$(disko_describe)"
    fi
    ;;
  esac
  [ -z "$pristine" ] || return "$disko_pristine_rc"
}

# disko_md_members NAME OPTPATH MEMBER...: succeeds when every member is blank (the array
# is to be created), fails when every member carries array NAME's superblock (it is to be
# assembled), and exits when the members hold anything else.
disko_md_members() {
  local name=$1 where=$2 m found blank=0 ours=0
  shift 2
  for m in "$@"; do
    disko_new "$m" || break
    blank=$((blank + 1))
  done
  ((blank < $#)) || return 0
  blank=0
  for m in "$@"; do
    disko_blkid "$m"
    found=$(disko_describe)
    if [ -z "$found" ]; then
      blank=$((blank + 1))
    elif [ "$disko_type" = linux_raid_member ] && [ "${disko_label#*:}" = "$name" ]; then
      ours=$((ours + 1))
    else
      disko_refuse "$m" "a member of array $name" "$where" "$found"
    fi
  done
  ((ours == 0)) && return 0
  ((blank == 0)) && return 1
  disko_die "$(printf 'the members of array %q (%s) are partly blank and partly members already: %q' "$name" "$where" "$*")"
}

# disko_wipe_new DEV: DEV is a device this run just created (an md array) that can show
# stale signatures of what its members held before: wiped when blkid finds any. Probing
# first spares wipefs's open for writing, after which udev probes DEV again.
disko_wipe_new() {
  disko_blkid "$1"
  [ -z "$disko_type$disko_pttype$disko_odd" ] || wipefs --all --quiet "$1"
}

# disko_vg_lvs VG: succeeds when volume group VG exists and sets disko_lvs to the names of
# its logical volumes, each with a space before and after. One LVM command answers both
# (each costs ~0.3 s under emulation, where a check per volume added up to seconds).
disko_vg_lvs() {
  local out names=()
  disko_lvs=''
  out=$(vgs --noheadings -o lv_name -- "$1" 2>/dev/null) || return 1
  read -r -d '' -a names <<<"$out" || :
  disko_lvs=" ${names[*]} "
}

# disko_modules MODULE...: load the kernel modules (dm-snapshot, dm-TYPE of an LV type)
# that are not loaded yet, read from /sys/module (device-mapper's raid types all live in
# dm-raid): a modprobe costs ~0.3 s under emulation even when it has nothing to do.
# Kernels with them built in (or without modules at all) make modprobe fail; lvcreate
# then says which device-mapper target is missing.
disko_modules() {
  local m k
  local -a load=()
  for m in "$@"; do
    k=${m//-/_}
    case $k in dm_raid[0-9]*) k=dm_raid ;; esac
    [ -d "/sys/module/$k" ] || load+=("$m")
  done
  ((${#load[@]} == 0)) || modprobe -a -q "${load[@]}" 2>/dev/null || :
}

# disko_mapped NAME: a device-mapper device NAME exists (what `cryptsetup status` answers
# for a container, read from sysfs without starting cryptsetup).
disko_mapped() {
  local f name
  for f in /sys/class/block/dm-*/dm/name; do
    [ -r "$f" ] || continue
    read -r name <"$f" || continue
    [ "$name" != "$1" ] || return 0
  done
  return 1
}

# disko_vg_new VG MEMBER...: every member is new (disko_new), so group VG cannot exist
# yet and has no volumes; spares the vgs call (~0.8 s under emulation).
disko_vg_new() {
  local m
  disko_lvs=' '
  for m in "${@:2}"; do
    disko_new "$m" || return 1
  done
}

# disko_has_lv LV: whether the group disko_vg_lvs read last has logical volume LV.
disko_has_lv() { [[ $disko_lvs == *" $1 "* ]]; }

# disko_zfs_members POOL OPTPATH MEMBER...: exits unless every member of the pool to be
# created is blank or carries this pool's label.
disko_zfs_members() {
  local pool=$1 where=$2 m found
  shift 2
  for m in "$@"; do
    disko_blkid "$m"
    found=$(disko_describe)
    if [ -n "$found" ] && ! { [ "$disko_type" = zfs_member ] && [ "$disko_label" = "$pool" ]; }; then
      disko_refuse "$m" "a member of pool $pool" "$where" "$found"
    fi
  done
}

# disko_bcachefs_exists UUID: a bcachefs filesystem with this UUID is on some device.
disko_bcachefs_exists() {
  local dev
  dev=$(blkid -c /dev/null -o device -t "UUID=$1" 2>/dev/null) || return 1
  [ "$(blkid -p -o value -s TYPE "${dev%%$'\n'*}" 2>/dev/null)" = bcachefs ]
}

# disko_link VAR PATH NODE: sets VAR to PATH when it exists (a stable name to record, as
# zpool does), else to NODE.
disko_link() {
  if [ -e "$2" ]; then printf -v "$1" '%s' "$2"; else printf -v "$1" '%s' "$3"; fi
}

# disko_mounted SOURCE TARGET: SOURCE is mounted on TARGET.
disko_mounted() {
  findmnt --source "$1" --mountpoint "$2" >/dev/null 2>&1
}

# disko_devnum PATH: sets disko_num to the device number (MAJOR:MINOR) of the block
# device PATH; fails when PATH is not one.
disko_devnum() {
  local n
  [ -b "$1" ] && n=$(stat -L -c '%t %T' -- "$1") || return 1
  disko_num=$((16#${n% *})):$((16#${n#* }))
}

# disko_swap_active NODE: the block device NODE is an active swap area. /proc/swaps names
# an area by the path it had where swapon ran, which another mount namespace may not have
# (a partition node made in a namespace that is gone is listed as /loop0p1): areas are
# compared by device number, read from the listed path when it is a block device here,
# else from sysfs under the kernel name (the path's last part).
disko_swap_active() {
  local want name type dev
  disko_devnum "$1" || return 1
  want=$disko_num
  {
    read -r _
    while read -r name type _; do
      [ "$type" = partition ] || continue
      printf -v name '%b' "$name"
      if disko_devnum "$name"; then
        dev=$disko_num
      elif [ -r "/sys/class/block/${name##*/}/dev" ]; then
        read -r dev <"/sys/class/block/${name##*/}/dev"
      else
        continue
      fi
      [ "$dev" != "$want" ] || return 0
    done
  } </proc/swaps
  return 1
}

# disko_hook OPTPATH WHEN CODE: runs a user hook (shell code from the layout, run as
# written, like disko does) in the current subshell, under set -e like the rest (a
# `|| ...` here would switch that off inside the hook).
disko_hook() {
  disko_log "$(printf 'running the %s of %s' "$2" "$1")"
  eval "$3"
}

# Passphrases never show under `bash -x`: the functions that hold one switch xtrace off
# (silently) and back on only if it was on. Their callers name the variable, never its
# value.

# disko_password DEVICE VAR [twice]: read a passphrase from the terminal into VAR (the
# password "disko" when IN_DISKO_TEST is set, as with disko). Never echoed, never in argv.
disko_password() {
  local pw check xtrace=${-//[^x]/}
  { set +x; } 2>/dev/null
  if [ -n "${IN_DISKO_TEST+x}" ]; then
    printf -v "$2" '%s' disko
    [ -z "$xtrace" ] || set -x
    return 0
  fi
  [ -t 0 ] || disko_die "$(printf 'a passphrase for %q must be typed, but stdin is not a terminal' "$1")"
  while :; do
    IFS= read -r -s -p "$(printf 'Enter passphrase for %q: ' "$1")" pw
    printf '\n' >&2
    [ "${3:-}" = twice ] || break
    IFS= read -r -s -p "$(printf 'Enter passphrase for %q again: ' "$1")" check
    printf '\n' >&2
    [ "$pw" = "$check" ] && break
    disko_log "the passphrases did not match, try again"
  done
  printf -v "$2" '%s' "$pw"
  [ -z "$xtrace" ] || set -x
}

# disko_password_file VAR FILE: VAR is FILE's content without trailing newlines (what
# disko's $(cat FILE) reads).
disko_password_file() {
  local xtrace=${-//[^x]/} pw
  { set +x; } 2>/dev/null
  pw=$(cat -- "$2") || disko_die "$(printf 'cannot read the passwordFile %q' "$2")"
  printf -v "$1" '%s' "$pw"
  [ -z "$xtrace" ] || set -x
}

# disko_secret VAR: print the passphrase in VAR, for cryptsetup's --key-file <(...) (a
# subshell: xtrace stays off there).
disko_secret() {
  { set +x; } 2>/dev/null
  printf '%s' "${!1}"
}

# disko_need_terminal WIPES NAME...: the passphrases of LUKS containers NAME (askPassword)
# are typed on the terminal when a container is created or opened. Without a terminal, a
# precondition fails (see disko_checked): when WIPES is 1 (the script destroys first,
# which closes them all) or when a container is not open yet.
disko_need_terminal() {
  local wipes=$1 n
  shift
  if [ -n "${IN_DISKO_TEST+x}" ] || [ -t 0 ]; then
    return 0
  fi
  for n in "$@"; do
    if [ "$wipes" = 1 ] || [ ! -e "/dev/mapper/$n" ]; then
      disko_problem "$(printf 'the passphrase of LUKS container %q (askPassword) must be typed, but stdin is not a terminal; nothing was changed. Run this on a terminal (ssh -t), or give the container a passwordFile or settings.keyFile' "$n")"
    fi
  done
}

# disko_settle DEV...: make udev's records of what format wrote current. udev probes a
# device when a tool that wrote it closes it, which can run before the last write (mkfs
# on a partition while udev still probes the table), so its database, and the
# /dev/disk/by-uuid and by-label links made from it, can lack a filesystem that is on the
# disk until the next event. A change event for the devices this format put a filesystem
# (or swap) on, waited for, makes udev probe them again now: those are the tops of what
# the disks DEV hold (the devices with no partitions and nothing built on them, found
# through sysfs from DEV down through partitions, md arrays and device-mapper devices).
# The devices in between (partition tables, md members, PVs, LUKS containers) get no
# event: udev saw them when their tools closed them, and the links the NixOS
# configuration names come from the tops; triggering them too made udev re-run its
# md/LVM rules on each (~1 s under emulation). Without udev there are no records to update.
disko_settle() {
  local dev k h leaf
  local -a todo=() nodes=()
  local -A seen=()
  [ -n "$disko_udev" ] || return 0
  for dev in "$@"; do
    [ ! -e "$dev" ] || {
      disko_resolve "$dev"
      todo+=("$disko_node")
    }
  done
  while ((${#todo[@]})); do
    k=${todo[-1]##*/}
    unset 'todo[-1]'
    [ -z "${seen[$k]+x}" ] || continue
    seen[$k]=1
    leaf=1
    for h in /sys/class/block/"$k"/"$k"*/partition /sys/class/block/"$k"/holders/*; do
      [ -e "$h" ] || continue
      h=${h%/partition}
      todo+=("/dev/${h##*/}")
      leaf=''
    done
    [ -z "$leaf" ] || [ ! -b "/dev/$k" ] || nodes+=("/dev/$k")
  done
  ((${#nodes[@]})) || return 0
  udevadm trigger --action=change --settle "${nodes[@]}" ||
    disko_log "$(printf 'warning: udevadm trigger --settle failed for %s; /dev/disk/by-* links may lag until the next udev event' "${nodes[*]}")"
}

# disko_parallel FUNCTION OPTPATH ...: run each function in a background job and wait for
# all of them; fails, naming the option paths, when any failed. Jobs get the script's stdin
# (a background job would otherwise read /dev/null). Layouts that prompt for passphrases
# are run in order instead: the generator does not call this for them.
disko_parallel() {
  local i
  local -a pids=() names=() failed=()
  if (($# == 2)); then
    "$1"
    return
  fi
  while (($#)); do
    "$1" <&0 &
    pids+=("$!")
    names+=("$2")
    shift 2
  done
  for i in "${!pids[@]}"; do
    wait "${pids[i]}" || failed+=("${names[i]}")
  done
  ((${#failed[@]} == 0)) || disko_die "failed: ${failed[*]} (see the messages above)"
}

# --- destroy ---

# disko_confirm N DEVICE OPTPATH ... ARGS...: destroy's consent. N pairs name the disks to
# wipe; the script's own arguments follow. --yes-wipe-all-disks skips the question (for
# every destroying mode, destroy alone included); without it, the question needs a
# terminal.
disko_confirm() {
  local n=$1 i yes='' answer
  local -a disks=("${@:2:n*2}")
  shift $((1 + n * 2))
  for i in "$@"; do
    case $i in
    --yes-wipe-all-disks) yes=1 ;;
    *) disko_die "$(printf 'unknown argument %q (the only one is --yes-wipe-all-disks)' "$i")" ;;
    esac
  done
  ((n > 0)) || return 0
  [ -z "$yes" ] || return 0
  [ -t 0 ] || disko_die "destroying disks needs consent: run this from a terminal, or pass --yes-wipe-all-disks"
  printf 'WARNING: this destroys all data on these disks:\n' >&2
  for ((i = 0; i < n * 2; i += 2)); do
    printf '  - %q (%s)\n' "${disks[i]}" "${disks[i + 1]}" >&2
  done
  printf '(pass --yes-wipe-all-disks to skip this question)\n' >&2
  IFS= read -r -p "Type yes to wipe them, anything else to abort: " answer
  [ "$answer" = yes ] || disko_die "aborted; nothing was changed"
}

# What lsblk shows under a disk, children first, as calls of disko_teardown with quoted
# arguments (jq's @sh), so that names read from the disk are only ever data.
disko_teardown_jq='
def below: ((.children // []) | map(below) | add // [])
  + [[.name, .type, (.fstype // ""), (.label // "")] + [(.mountpoints // [])[] | select(. != null)]];
.blockdevices | map(below) | add // [] | .[] | "disko_teardown " + (map(@sh) | join(" "))'

disko_warn_failed() {
  disko_log "$(printf 'warning: %s failed; continuing (the wipe is checked at the end)' "$*")"
}

# disko_teardown NODE TYPE FSTYPE LABEL MOUNTPOINT...: unmount NODE and stop what runs on
# it (swap, LVM, LUKS, md, a zpool), then wipe its signatures. Failures are reported and
# skipped: what matters is checked after the wipe.
disko_teardown() {
  local node=$1 type=$2 fstype=$3 label=$4 mp vg
  shift 4
  for mp in "$@"; do
    [ "$mp" = "[SWAP]" ] && continue
    umount -R "$mp" 2>/dev/null || ! findmnt --mountpoint "$mp" >/dev/null 2>&1 || disko_warn_failed umount -R "$mp"
  done
  if disko_swap_active "$node"; then
    swapoff "$node" || disko_warn_failed swapoff "$node"
  fi
  if [ -z "$fstype" ]; then
    # lsblk reads the type from udev's database; without udev, ask the disk.
    disko_blkid "$node"
    fstype=$disko_type label=$disko_label
  fi
  case $fstype in
  zfs_member)
    if command -v zpool >/dev/null 2>&1; then
      zpool destroy -f "$label" 2>/dev/null || :
      zpool labelclear -f "$node" || disko_warn_failed zpool labelclear "$node"
    fi
    ;;
  LVM2_member)
    if command -v pvs >/dev/null 2>&1 && command -v vgchange >/dev/null 2>&1 && command -v vgremove >/dev/null 2>&1; then
      vg=$(pvs --noheadings -o vg_name "$node" 2>/dev/null) || vg=
      vg=${vg//[[:space:]]/}
      if [ -n "$vg" ]; then
        vgchange -a n "$vg" >/dev/null || disko_warn_failed vgchange -a n "$vg"
        vgremove -f -f -y "$vg" >/dev/null || disko_warn_failed vgremove "$vg"
      fi
    fi
    ;;
  esac
  # Only a machine with the tool can have made what it stops (the wipe is checked anyway):
  # a destroy needs none of them up front (see disko_need_tools).
  case $type in
  crypt) if command -v cryptsetup >/dev/null 2>&1; then cryptsetup close "$node" || disko_warn_failed cryptsetup close "$node"; fi ;;
  lvm) if command -v lvremove >/dev/null 2>&1; then [ ! -e "$node" ] || lvremove -f -y "$node" >/dev/null || disko_warn_failed lvremove "$node"; fi ;;
  raid*) if command -v mdadm >/dev/null 2>&1; then [ ! -e "$node" ] || mdadm --stop "$node" || disko_warn_failed mdadm --stop "$node"; fi ;;
  disk | loop | part) wipefs --all --force --quiet "$node" || disko_warn_failed wipefs "$node" ;;
  esac
}

# disko_destroy_disk DISK OPTPATH: tear down everything on DISK, wipe it, and check that
# nothing is left (what disko's disk-deactivate does, plus the check).
disko_destroy_disk() {
  local disk=$1 where=$2 plan name found deadline left
  disko_log "$(printf 'wiping %q (%s)' "$disk" "$where")"
  if command -v zpool >/dev/null 2>&1; then
    # Swap on a zvol holds its pool; lsblk cannot say which pool a zvol belongs to.
    while read -r name _; do
      case $name in /dev/zd*) swapoff "$name" || disko_warn_failed swapoff "$name" ;; esac
    done </proc/swaps
  fi
  plan=$(lsblk --json --paths --output NAME,TYPE,FSTYPE,LABEL,MOUNTPOINTS "$disk" | jq -r "$disko_teardown_jq")
  eval "$plan"
  # The MBR boot code and the rest of the first MiB, where partition tables and boot
  # loaders live, and the last MiB, where the backup GPT lives (what sgdisk --zap-all
  # clears): the disk is then pristine for format (disko_pristine).
  local size
  read -r size <"/sys/class/block/${disk##*/}/size"
  dd if=/dev/zero of="$disk" bs=1M count=1 conv=notrunc,fsync status=none
  if ((size * 512 > 2 * 1048576)); then
    dd if=/dev/zero of="$disk" bs=512 count=2048 seek=$((size - 2048)) conv=notrunc,fsync status=none
  fi
  # Nothing may be left below the disk: the kernel refuses to forget a partition that is
  # in use, and udev may hold one open for a moment (it probes what the wipe changed).
  deadline=$((SECONDS + DISKO_DEVICE_TIMEOUT))
  while :; do
    partx -d "$disk" 2>/dev/null || :
    left=''
    while IFS= read -r name; do
      [ "$name" = "$disk" ] || left+=" $name"
    done < <(lsblk --noheadings --raw --paths --output NAME -- "$disk" 2>/dev/null)
    [ -n "$left" ] || break
    [ "$SECONDS" -lt "$deadline" ] || disko_die "$(printf '%q (%s) is still in use after wiping (%s remain): stop what uses them and run destroy again' "$disk" "$where" "${left# }")"
    sleep 0.1
  done
  found=$(disko_probe "$disk")
  [ -z "$found" ] || disko_die "$(printf '%q (%s) still holds %s after wiping' "$disk" "$where" "$found")"
}
