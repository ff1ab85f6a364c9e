# The live suite in a guest (tests/targets/boot.sh TARGET sh tests/targets/suite.sh):
# the whole test suite as root, then the live tests as nobody; fails if either
# fails. (/usr/bin/setpriv: busybox's sh would run its own, smaller applet.)
python3 -m pytest -q -rs "$@"; root=$?
echo "== as nobody (setpriv --reuid=65534): the live tests =="
/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups \
  python3 -m pytest -q -rs -m live "$@"; nobody=$?
echo "suite: root exit $root, nobody exit $nobody"
[ "$root" = 0 ] && [ "$nobody" = 0 ]
