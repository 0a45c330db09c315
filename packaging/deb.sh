#!/usr/bin/env bash
# Builds veille's Debian package: target/debian/veille_<version>-1_<arch>.deb.
#
#   packaging/deb.sh          a release build (what to install)
#   packaging/deb.sh --dev    the debug build the tests already made (CI
#                             checks the packaging with it, not the speed)
#
# Needs cargo-deb (`cargo install cargo-deb --locked`, installed here when
# missing) and lowdown (Debian package `lowdown`), which turns
# docs/configuration.md into the manual page veille.toml(5).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
dir=target/release
if [ "${1:-}" = --dev ]; then
    profile=dev
    dir=target/debug
fi

command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --version 3.8.0
if ! command -v lowdown >/dev/null 2>&1; then
    echo "packaging/deb.sh: lowdown is missing: sudo apt-get install lowdown" >&2
    exit 1
fi

cargo build --locked --profile "$profile" --bin veille
veille="$dir/veille"

# What the package carries besides the binary, made from the same sources
# as `--help` and the documentation, never written by hand.
out=target/package
rm -rf "$out"
mkdir -p "$out/man1" "$out/man5" "$out/completions"
"$veille" man >"$out/man1/veille.1"
for c in $("$veille" --help | awk '/^Commands:/{on=1; next} /^$/{on=0} on && $1 != "help" {print $1}'); do
    "$veille" man "$c" >"$out/man1/veille-$c.1"
done
"$veille" completions bash >"$out/completions/veille"
"$veille" completions zsh >"$out/completions/_veille"
"$veille" completions fish >"$out/completions/veille.fish"
# The manual page's date is the last commit's, so that two builds of one
# commit make the same page.
date=$(git log -1 --format=%cs 2>/dev/null || echo 1970-01-01)
# The page's header and NAME section (what whatis and apropos read), then
# the document without its title: its sections become subsections.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
{
    printf '.TH "VEILLE.TOML" "5" "%s" "veille %s" "File Formats"\n' "$date" "$version"
    printf '.SH NAME\nveille.toml \\- the configuration file of veille\n.SH DESCRIPTION\n'
    sed '1d' docs/configuration.md | lowdown -Tman
} >"$out/man5/veille.toml.5"

# The example config reads the sample feed where the package puts it.
sed 's|^url = "samples/actualites.xml"|url = "/usr/share/veille/samples/actualites.xml"|' \
    config.toml >"$out/config.toml"
grep -q '^url = "/usr/share/veille/samples/actualites.xml"' "$out/config.toml"

cargo deb --no-build --profile "$profile" --locked
