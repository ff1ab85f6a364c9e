# Sourced in the guest's root before the command (tests/targets/boot.sh):
# TMPDIR on a real file system (ext4 on zram), so the tests' own swap files
# work (not on tmpfs or 9p), and a small hugetlb pool. The guest is disposable.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PY_COLORS=0 PAGEMAP_EMULATED=1 PYTEST_ADDOPTS="-p no:cacheprovider"
# kmod's modprobe: busybox's applet, which its sh prefers, cannot read .ko.xz.
/sbin/modprobe zram; /sbin/modprobe ext4
echo 2G > /sys/block/zram0/disksize  # memory only as used: swap files of zeros cost none
mkfs.ext4 -q /dev/zram0 && mount -t ext4 /dev/zram0 /mnt/scratch && chmod 1777 /mnt/scratch \
  && export TMPDIR=/mnt/scratch
echo 4 2>/dev/null > /proc/sys/vm/nr_hugepages
echo "guest: up $(cut -d. -f1 /proc/uptime) s, $(uname -srm), $(python3 -V), $(nproc) CPUs, TMPDIR=${TMPDIR:-unset}, swap $(grep -c ^/ /proc/swaps) area(s), $(grep -s HugePages_Total /proc/meminfo || echo "no hugetlb")"
