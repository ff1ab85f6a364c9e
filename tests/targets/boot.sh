#!/bin/sh
# tests/targets/boot.sh TARGET COMMAND [ARG...]
#
# Boots a real Debian kernel of another machine under qemu-system (TCG) and
# runs COMMAND inside it, as root, in the project directory shared in
# writable; prints the guest's output and exits with COMMAND's status.
#
#   x86-64   Debian 12, Linux 6.1: no PAGEMAP_SCAN, soft-dirty on
#   s390x    Debian 13, Linux 6.12: big-endian, soft-dirty on
#   ppc64el  Debian 13, Linux 6.12: 64K pages, soft-dirty on
#   arm64    Debian 13, Linux 6.12, 4K pages (arm64-16k: its 16K-page flavour)
#   armhf    Debian 13, Linux 6.12 armmp-lpae: 32-bit user space, LPAE (3 GiB)
#
# From the project root:  sh tests/targets/boot.sh x86-64 sh tests/targets/suite.sh
# The guest has TMPDIR on a real file system (ext4 on zram: the tests' swap
# files work there), a hugetlb pool, and `setpriv` to run as nobody. Environment:
#   PAGEMAP_TARGETS_CACHE  where roots and initramfs are kept (/var/cache/pagemap-targets)
#   PAGEMAP_TARGET_MEM     guest RAM in MiB;  PAGEMAP_TARGET_CPUS  vCPUs (2)
#   PAGEMAP_TARGET_TIMEOUT seconds before the guest is killed (3000)
# Exit 125 when the guest reports no status (it hung, crashed or timed out).
# The first use of a TARGET installs qemu-system, mmdebstrap and kmod (as root)
# and builds the root (a few minutes); later boots take 15-40 s under TCG.
set -eu

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 2 ] || usage
target=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
cache=${PAGEMAP_TARGETS_CACHE:-/var/cache/pagemap-targets}

# Debian 13 as 'stable' for s390x and ppc64el: the mirror this was built with
# lacked those two architectures' files of the newest 'trixie' point release.
case $target in
  x86-64)  arch=amd64;   suite=bookworm; kpkg=linux-image-amd64;       mem=1024
           qemu=x86_64;  bus=pci;  con=ttyS0;     mods="virtio_pci 9pnet_virtio 9p"
           machine="-M pc -cpu max" ;;
  s390x)   arch=s390x;   suite=stable;   kpkg=linux-image-s390x;       mem=1024
           qemu=s390x;   bus=ccw;  con=ttysclp0;  mods="virtio_ccw 9pnet_virtio 9p"
           machine="-M s390-ccw-virtio -cpu max" ;;
  ppc64el) arch=ppc64el; suite=stable;   kpkg=linux-image-powerpc64le; mem=1024
           qemu=ppc64;   bus=pci;  con=hvc0;      mods="virtio_pci 9pnet_virtio 9p"
           machine="-M pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off" ;;
  arm64)   arch=arm64;   suite=trixie;   kpkg=linux-image-arm64;       mem=1024
           qemu=aarch64; bus=pci;  con=ttyAMA0;   mods="virtio_pci 9pnet_virtio 9p"
           machine="-M virt -cpu max,pauth-impdef=on" ;;
  arm64-16k) arch=arm64; suite=trixie;   kpkg=linux-image-arm64-16k;   mem=1024
           qemu=aarch64; bus=pci;  con=ttyAMA0;   mods="virtio_pci 9pnet_virtio 9p"
           machine="-M virt -cpu max,pauth-impdef=on" ;;
  armhf)   arch=armhf;   suite=trixie;   kpkg=linux-image-armmp-lpae;  mem=3072
           qemu=arm;     bus=pci;  con=ttyAMA0;   mods="virtio_pci 9pnet_virtio 9p"
           machine="-M virt,highmem=on -cpu cortex-a15" ;;
  *) echo "boot.sh: unknown target '$target'" >&2; usage ;;
esac
mem=${PAGEMAP_TARGET_MEM:-$mem}
cpus=${PAGEMAP_TARGET_CPUS:-2}
timeout=${PAGEMAP_TARGET_TIMEOUT:-3000}

need() { command -v "$1" >/dev/null 2>&1; }
install_tools() {
  pkgs=
  need "qemu-system-$qemu" || case $qemu in
    x86_64) pkgs="$pkgs qemu-system-x86" ;; s390x) pkgs="$pkgs qemu-system-misc" ;;
    ppc64) pkgs="$pkgs qemu-system-ppc" ;; *) pkgs="$pkgs qemu-system-arm" ;;
  esac
  need mmdebstrap || pkgs="$pkgs mmdebstrap"
  need depmod || pkgs="$pkgs kmod"
  need cpio || pkgs="$pkgs cpio"
  need xz || pkgs="$pkgs xz-utils"
  need zstd || pkgs="$pkgs zstd"
  [ "$arch" = amd64 ] || need "qemu-${qemu%64}-static" || need "qemu-$qemu-static" \
    || pkgs="$pkgs qemu-user-static"
  if [ -n "$pkgs" ]; then
    echo "boot.sh: installing$pkgs" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >&2
  fi
}

# The Debian mirror this machine's apt already uses (as foreign-python finds it).
apt_mirror() {
  { sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null
    sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]*\).*/\2/p' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
  } | tr ' ' '\n' | grep -E '/debian/?$' | head -n 1
}

# The root: Debian's own packages, extracted (not configured: no foreign code
# runs on this machine), plus what an init needs.
build_root() {
  mirror=${PAGEMAP_TARGETS_MIRROR:-$(apt_mirror)}
  [ -n "$mirror" ] || { echo "boot.sh: no Debian mirror in apt's sources" >&2; exit 1; }
  tmp=$root.tmp
  rm -rf "$tmp"
  echo "boot.sh: building the $target root in $root (once)" >&2
  mmdebstrap --quiet --arch="$arch" --variant=extract \
    --include=python3,python3-pytest,python3-hypothesis,busybox-static,kmod,util-linux,mount,e2fsprogs,$kpkg \
    "$suite" "$tmp" "$mirror" >&2
  for d in lib lib64 bin sbin; do
    [ -e "$tmp/$d" ] || [ ! -d "$tmp/usr/$d" ] || ln -s "usr/$d" "$tmp/$d"
  done
  for d in proc sys dev tmp run mnt/project mnt/ctl mnt/scratch; do mkdir -p "$tmp/$d"; done
  [ -e "$tmp/etc/passwd" ] || printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$tmp/etc/passwd"
  [ -e "$tmp/etc/group" ] || printf 'root:x:0:\nnogroup:x:65534:\n' > "$tmp/etc/group"
  mkdir -p "$tmp/root"
  kver=$(ls "$tmp/lib/modules" | head -n 1)
  depmod -b "$tmp" "$kver"
  # Python's bytecode, made now: the root is read-only in the guest and
  # compiling the standard library and pytest on every boot under TCG is slow.
  pyver=$(ls "$tmp/usr/bin" | grep -E '^python3\.[0-9]+$' | sort -V | tail -n 1)
  dirs="$tmp/usr/lib/$pyver $tmp/usr/lib/python3/dist-packages"
  if [ "$arch" = amd64 ]; then
    chroot "$tmp" "/usr/bin/$pyver" -m compileall -q -j 0 "/usr/lib/$pyver" /usr/lib/python3/dist-packages >/dev/null || true
  else
    q=$(command -v "qemu-$qemu-static" || command -v "qemu-${qemu%64}-static")
    [ "$qemu" != ppc64 ] || q=$(command -v qemu-ppc64le-static)
    "$q" -L "$tmp" "$tmp/usr/bin/$pyver" -m compileall -q -s "$tmp" -p / $dirs >/dev/null || true
  fi
  mv "$tmp" "$root"
}

# The initramfs: the root's static busybox and the modules that reach the
# 9p root, uncompressed, loaded in dependency order.
build_initrd() {
  kver=$(ls "$root/lib/modules" | head -n 1)
  work=$(mktemp -d)
  mkdir -p "$work/bin" "$work/proc" "$work/sys" "$work/dev" "$work/newroot" "$work/modules"
  cp "$root/bin/busybox" "$work/bin/busybox"
  : > "$work/modules/order"
  for m in $mods; do
    modprobe -d "$root" -S "$kver" --show-depends "$m" 2>/dev/null | sed -n 's/^insmod \([^ ]*\).*/\1/p'
  done | awk '!seen[$0]++' | while read -r ko; do
    name=$(basename "$ko"); src=$ko
    case $name in
      *.xz) xz -dc "$src" > "$work/modules/${name%.xz}"; name=${name%.xz} ;;
      *.zst) zstd -qdc "$src" > "$work/modules/${name%.zst}"; name=${name%.zst} ;;
      *) cp "$src" "$work/modules/$name" ;;
    esac
    echo "$name" >> "$work/modules/order"
  done
  cp "$here/init" "$work/init"
  chmod +x "$work/init"
  (cd "$work" && find . | cpio -o -H newc --quiet) > "$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  rm -rf "$work"
}

mkdir -p "$cache"
root=$cache/$target-$suite
initrd=$root.initrd
[ -x "$root/usr/bin/python3" ] || { install_tools; build_root; }
[ -s "$initrd" ] && [ "$initrd" -nt "$here/init" ] || { install_tools; build_initrd; }
need "qemu-system-$qemu" || install_tools
kernel=$(ls "$root"/boot/vmlinu[xz]-* | head -n 1)

# The command goes in through a small control share; its status comes back there.
ctl=$(mktemp -d)
trap 'rm -rf "$ctl"' EXIT
{
  printf 'cd /mnt/project\nexec'
  for a in "$@"; do printf " '%s'" "$(printf '%s' "$a" | sed "s/'/'\\\\''/g")"; done
  printf '\n'
} > "$ctl/command"
cp "$here/guest-setup.sh" "$ctl/setup"

share() {  # TAG PATH [readonly]
  printf -- '-fsdev local,id=%s,path=%s,security_model=none%s -device virtio-9p-%s,fsdev=%s,mount_tag=%s ' \
    "$1" "$2" "${3:+,readonly=on}" "$bus" "$1" "$1"
}
start=$(date +%s)
# shellcheck disable=SC2046
timeout -k 10 "$timeout" "qemu-system-$qemu" $machine -accel tcg -smp "$cpus" -m "$mem" \
  -nodefaults -no-reboot -display none -serial stdio -monitor none \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=$con quiet loglevel=3 panic=-1 rdinit=/init" \
  $(share root "$root" ro) $(share project "$project") $(share ctl "$ctl") \
  < /dev/null || { code=$?; echo "boot.sh: qemu ended with status $code" >&2; }
echo "boot.sh: $target guest ran $(( $(date +%s) - start )) s" >&2
if [ -s "$ctl/status" ]; then
  exit "$(cat "$ctl/status")"
fi
echo "boot.sh: the guest did not report a status (hung, crashed or timed out)" >&2
exit 125
