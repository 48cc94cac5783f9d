#!/usr/bin/env bash
# Builds eventhub_<version>_<arch>.deb from a release build with the Swift runtime linked statically.
#
#   packaging/build-deb.sh [OUTDIR]        (default OUTDIR: .build/deb)
#
# The package depends only on the distribution's libc, libsqlite3-0, libsystemd0 and libstdc++/libgcc
# (computed from the binaries, hubd and hubctl, with dpkg-shlibdeps when available).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/deb}
version=${VERSION:-$(sed -n 's/.*current = "\(.*\)".*/\1/p' Sources/HubCore/HubVersion.swift)}
arch=$(dpkg --print-architecture)
swift build -c release --static-swift-stdlib --product hubd
swift build -c release --static-swift-stdlib --product hubctl
bindir=$(swift build -c release --static-swift-stdlib --show-bin-path)
bin=$bindir/hubd

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$bin" "$stage/usr/bin/hubd"
install -D -m 0755 "$bindir/hubctl" "$stage/usr/bin/hubctl"
strip --strip-unneeded "$stage/usr/bin/hubd" "$stage/usr/bin/hubctl"
install -D -m 0644 packaging/systemd/eventhub.service "$stage/lib/systemd/system/eventhub.service"
install -D -m 0644 packaging/systemd/eventhub.socket "$stage/lib/systemd/system/eventhub.socket"
install -D -m 0644 packaging/systemd/eventhub-admin.socket "$stage/lib/systemd/system/eventhub-admin.socket"
install -D -m 0644 packaging/systemd/eventhub.sysusers "$stage/usr/lib/sysusers.d/eventhub.conf"
install -D -m 0644 packaging/systemd/eventhub.tmpfiles "$stage/usr/lib/tmpfiles.d/eventhub.conf"
install -D -m 0644 etc/hub.yaml "$stage/etc/eventhub/hub.yaml"
install -D -m 0644 README.md "$stage/usr/share/doc/eventhub/README.md"
# The man page is generated from hubd --help, so it can never disagree with the binary.
mkdir -p "$stage/usr/share/man/man8"
help2man -N -s 8 -n "EventHub durable event hub server" --version-string="hubd $version" "$bin" | gzip -9n > "$stage/usr/share/man/man8/hubd.8.gz"
# hubctl's man page and shell completions come from its own argument parser: every command, option and example.
# The plugin reads `hubctl --experimental-dump-help` from a debug build (the tests' build, so no second release
# build); the text does not depend on the configuration.
swift package plugin generate-manual --configuration debug --section 1 --authors "EventHub developers" >/dev/null
install -D -m 0644 .build/plugins/GenerateManual/outputs/hubctl/hubctl.1 "$stage/usr/share/man/man1/hubctl.1"
gzip -9n "$stage/usr/share/man/man1/hubctl.1"
install -d "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/fish/vendor_completions.d"
"$bindir/hubctl" --generate-completion-script bash > "$stage/usr/share/bash-completion/completions/hubctl"
"$bindir/hubctl" --generate-completion-script zsh > "$stage/usr/share/zsh/vendor-completions/_hubctl"
"$bindir/hubctl" --generate-completion-script fish > "$stage/usr/share/fish/vendor_completions.d/hubctl.fish"
# The web console: static files, served by hubd at /console/ from here (its default web-dir).
(cd web && find . -type f -exec install -D -m 0644 {} "$stage/usr/share/eventhub/web/{}" \;)
(cd docs && find . -type f -name '*.md' -exec install -D -m 0644 {} "$stage/usr/share/doc/eventhub/docs/{}" \;)

# Runtime dependencies from the binary's dynamic links.
depends="libc6, libsqlite3-0, libsystemd0, libstdc++6, libgcc-s1"
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
    mkdir -p "$stage/debian" && echo "Source: eventhub" > "$stage/debian/control"
    computed=$(cd "$stage" && dpkg-shlibdeps -O usr/bin/hubd usr/bin/hubctl 2>/dev/null | sed -n 's/^shlibs:Depends=//p') || true
    rm -rf "$stage/debian"
    [ -n "$computed" ] && depends=$computed
fi

mkdir -p "$stage/DEBIAN"
size=$(du -sk "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$depends/" -e "s/@SIZE@/$size/" packaging/deb/control.in > "$stage/DEBIAN/control"
install -m 0644 packaging/deb/conffiles "$stage/DEBIAN/conffiles"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$stage/DEBIAN/"

mkdir -p "$out"
deb="$out/eventhub_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group -Zxz "$stage" "$deb" >/dev/null
echo "$deb"
