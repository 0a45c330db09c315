#!/usr/bin/env bash
# Installs the Debian package built by packaging/deb.sh into a fresh Debian
# 12 (a debootstrap chroot, so the machine running this is left alone) and
# checks what a user would: the user made, the example config a conffile
# that checks clean, nothing enabled, an edited config kept by an upgrade,
# and remove / purge leaving the state folder.
#
#   packaging/install-test.sh [PATH.deb]      (as root; needs debootstrap)
set -euo pipefail
cd "$(dirname "$0")/.."

deb=${1:-$(ls target/debian/veille_*.deb | head -n 1)}
root=$(mktemp -d /tmp/veille-chroot.XXXXXX)
trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$root"' EXIT

fail() { echo "install test: $*" >&2; exit 1; }
in_root() { chroot "$root" "$@"; }

debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/veille.deb"

echo "== first install, as the README says (apt brings the dependencies)"
in_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -q /tmp/veille.deb | tee "$root/tmp/install.log"
grep -q 'veille is installed, not started' "$root/tmp/install.log" || fail "postinst did not say what to do next"
in_root getent passwd veille >/dev/null || fail "no user veille"
in_root getent group veille >/dev/null || fail "no group veille"
grep -qx /etc/veille/config.toml "$root/var/lib/dpkg/info/veille.conffiles" || fail "config.toml is not a conffile"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/veille.service" ] || fail "the service was enabled"
in_root veille --version
in_root veille --config /etc/veille/config.toml check >"$root/tmp/check.log" || fail "check failed on the example config: $(cat "$root/tmp/check.log")"
grep -q 'does not exist' "$root/tmp/check.log" && fail "check warns about a missing feed file: $(cat "$root/tmp/check.log")"
in_root veille --config /etc/veille/config.toml test --feed /usr/share/veille/samples/actualites.xml >/dev/null || fail "the sample feed does not match the example rules"
for page in man1/veille.1.gz man1/veille-run.1.gz man5/veille.toml.5.gz; do
    [ -s "$root/usr/share/man/$page" ] || fail "no $page"
done
zcat "$root/usr/share/man/man5/veille.toml.5.gz" | grep -q 'veille.toml \\- the configuration file' || fail "veille.toml(5) has no NAME"

echo "== upgrade with an edited config"
printf '\n# edited by the admin\n' >>"$root/etc/veille/config.toml"
in_root dpkg -i --force-confold /tmp/veille.deb >/dev/null
grep -q '# edited by the admin' "$root/etc/veille/config.toml" || fail "the upgrade replaced an edited config"

echo "== remove, then purge"
mkdir -p "$root/var/lib/veille" && touch "$root/var/lib/veille/veille.db"
in_root dpkg -r veille >/dev/null
[ ! -e "$root/usr/bin/veille" ] || fail "remove left the binary"
[ -e "$root/etc/veille/config.toml" ] || fail "remove took the config (only purge may)"
in_root dpkg -P veille >/dev/null
[ ! -e "$root/etc/veille/config.toml" ] || fail "purge left the config"
[ -e "$root/var/lib/veille/veille.db" ] || fail "purge took the database"
echo "install test: passed"
