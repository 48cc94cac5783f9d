#!/usr/bin/env bash
# Builds the .deb and proves it: contents, dependencies (no Swift runtime libraries), then installs it into a
# throwaway Debian 12 root made with debootstrap, runs hubd there as the eventhub user, upgrades it (data and
# admin token kept), removes it (data and conffile kept) and purges it (data, user and conffile gone).
# systemd is not PID 1 in the throwaway root, so the maintainer scripts skip starting units, as they must.
#
#   packaging/test-deb.sh                 (root; needs debootstrap and the Debian mirror)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/eventhub-deb-test.XXXXXX)
root="$work/root"
cleanup() { umount "$root/proc" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
step() { echo "test-deb: $*" >&2; }

step "building the package"
deb=$(packaging/build-deb.sh "$work/v1" | tail -1)
[ -f "$deb" ] || fail "no package built"

step "checking contents and dependencies of $(basename "$deb")"
dpkg-deb -c "$deb" | awk '{print $NF}' > "$work/contents"
for f in ./usr/bin/hubd ./usr/bin/hubctl ./usr/share/man/man1/hubctl.1.gz ./usr/share/bash-completion/completions/hubctl \
         ./usr/share/zsh/vendor-completions/_hubctl ./usr/share/fish/vendor_completions.d/hubctl.fish \
         ./usr/share/eventhub/web/index.html ./usr/share/eventhub/web/js/app.js ./lib/systemd/system/eventhub.service ./lib/systemd/system/eventhub.socket \
         ./lib/systemd/system/eventhub-admin.socket ./etc/eventhub/hub.yaml ./usr/lib/sysusers.d/eventhub.conf \
         ./usr/lib/tmpfiles.d/eventhub.conf ./usr/share/doc/eventhub/README.md ./usr/share/man/man8/hubd.8.gz; do
    grep -qx "$f" "$work/contents" || fail "missing $f"
done
[ "$(dpkg-deb -I "$deb" conffiles)" = "/etc/eventhub/hub.yaml" ] || fail "hub.yaml is not a conffile"
depends=$(dpkg-deb -f "$deb" Depends)
step "Depends: $depends"
echo "$depends" | tr ',' '\n' | sed 's/(.*//; s/ //g' | while read -r dep; do
    case "$dep" in
        libc6|libsqlite3-0|libsystemd0|libstdc++6|libgcc-s1|zlib1g|libssl3) ;;
        *) fail "unexpected dependency $dep" ;;
    esac
done
dpkg-deb -x "$deb" "$work/x"
for b in hubd hubctl; do
    if ldd "$work/x/usr/bin/$b" | grep -qi swift; then fail "$b links Swift runtime libraries dynamically"; fi
done

step "making a throwaway Debian 12 root"
debootstrap --variant=minbase --include=adduser,curl,libsqlite3-0,libsystemd0,libstdc++6 bookworm "$root" \
    "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
mount -t proc proc "$root/proc"

step "installing"
cp "$deb" "$root/tmp/eventhub.deb"
chroot "$root" dpkg -i /tmp/eventhub.deb > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i"; }
chroot "$root" getent passwd eventhub >/dev/null || fail "no eventhub user"
[ "$(chroot "$root" stat -c '%U %a' /var/lib/eventhub)" = "eventhub 700" ] || fail "state directory owner/mode: $(chroot "$root" stat -c '%U %a' /var/lib/eventhub)"

port=$((20000 + RANDOM % 20000))
start_hub() {
    # chroot --userspec execs hubd itself (runuser would fork), so $! is hubd and SIGTERM reaches it.
    chroot --userspec=eventhub:eventhub "$root" /usr/bin/hubd --config /etc/eventhub/hub.yaml --listen "127.0.0.1:$port" \
        --admin-socket /var/lib/eventhub/admin.sock > "$work/hubd.log" 2>&1 &
    hub=$!
    for _ in $(seq 1 100); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && return 0; sleep 0.1; done
    cat "$work/hubd.log"; fail "hubd did not become ready in the installed root"
}
stop_hub() { kill -TERM "$hub"; wait "$hub" || fail "hubd exited non-zero on SIGTERM"; }

step "running hubd as the eventhub user"
start_hub
[ "$(chroot "$root" stat -c '%U %a' /var/lib/eventhub/admin.token)" = "eventhub 600" ] || fail "admin.token owner/mode"
for f in hub.db hub.db-wal hub.db-shm; do
  [ "$(chroot "$root" stat -c '%U %a' /var/lib/eventhub/$f)" = "eventhub 600" ] || fail "$f owner/mode: $(chroot "$root" stat -c '%U %a' /var/lib/eventhub/$f)"
done
token=$(cat "$root/var/lib/eventhub/admin.token")
curl -sf -X POST -H "Authorization: Bearer $token" "127.0.0.1:$port/v1/admin/slots" -d '{"name":"pkg"}' >/dev/null || fail "admin API"
curl -sf -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: text/plain' "127.0.0.1:$port/v1/stream/pkg/a" -d kept >/dev/null || fail "create stream"
curl -sf "127.0.0.1:$port/console/" | grep -q "EventHub console" || fail "the console is not served from /usr/share/eventhub/web"
# hubctl as the eventhub user over the admin socket: no token needed, the socket's permissions are the credential.
ctl() { chroot --userspec=eventhub:eventhub "$root" env HUB_SOCKET=/var/lib/eventhub/admin.sock /usr/bin/hubctl "$@"; }
ctl status > "$work/status.txt" || { cat "$work/status.txt"; fail "hubctl status"; }
grep -q "state: *ready" "$work/status.txt" || fail "hubctl status does not say ready"
ctl slot create pkg2 --max-age 7d 2>/dev/null | grep -q "retention: *age 7d" || fail "hubctl slot create"
[ "$(ctl publish pkg2 '{"n":1}')" = "1" ] || fail "hubctl publish"
ctl backup /var/lib/eventhub/pkg-backup.db >/dev/null 2>&1 || fail "hubctl backup"
chroot "$root" /usr/bin/hubctl verify --file /var/lib/eventhub/pkg-backup.db >/dev/null || fail "hubctl verify"
chroot "$root" /usr/bin/hubctl config check /etc/eventhub/hub.yaml 2>/dev/null || fail "hubctl config check"
set +e; chroot "$root" /usr/bin/hubctl restore /var/lib/eventhub/pkg-backup.db --data-dir /var/lib/eventhub >/dev/null 2>&1; rc=$?; set -e
[ "$rc" = 1 ] || fail "hubctl restore did not refuse a running hub (exit $rc)"
stop_hub

step "upgrading"
deb2=$(VERSION=9.9.9 packaging/build-deb.sh "$work/v2" | tail -1)
cp "$deb2" "$root/tmp/eventhub2.deb"
chroot "$root" dpkg -i /tmp/eventhub2.deb > "$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log"; fail "upgrade"; }
[ "$(chroot "$root" dpkg-query -W -f='${Version}' eventhub)" = "9.9.9" ] || fail "version after upgrade"
start_hub
[ "$(curl -sf -H "Authorization: Bearer $token" "127.0.0.1:$port/v1/stream/pkg/a")" = "kept" ] || fail "data or token lost by the upgrade"
stop_hub

step "removing (data and configuration stay)"
chroot "$root" dpkg -r eventhub > "$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "dpkg -r"; }
[ ! -e "$root/usr/bin/hubd" ] || fail "hubd still installed after remove"
[ -f "$root/var/lib/eventhub/hub.db" ] || fail "remove deleted the data"
[ -f "$root/etc/eventhub/hub.yaml" ] || fail "remove deleted the conffile"

step "purging (data, user and configuration go)"
chroot "$root" dpkg -P eventhub > "$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg -P"; }
[ ! -e "$root/var/lib/eventhub" ] || fail "purge left /var/lib/eventhub"
[ ! -e "$root/etc/eventhub/hub.yaml" ] || fail "purge left the conffile"
! chroot "$root" getent passwd eventhub >/dev/null || fail "purge left the eventhub user"
step "OK"
