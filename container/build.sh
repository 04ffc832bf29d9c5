#!/usr/bin/env bash
# Builds Ferry's image from an already built binary (no rebuild), then proves it by
# running the binary taken out of the image.
#
#   container/build.sh [BINARY] [TAG]       default: the newer of target/release/ferry and
#                                           target/debug/ferry; tag localhost/ferry:dev
#   VERIFY=0 container/build.sh ...         build only
#
# Verification (needs root for chroot): the image's root filesystem is exported, then
#   1. chroot ROOTFS /ferry --version
#   2. chroot ROOTFS /ferry serve --run-as 1001:0 ... (the target, from the image)
#      chroot --userspec=1001:0 ROOTFS /ferry push ... ferry://localhost:PORT/vol (the
#      source, from the image, as uid 1001 reading another user's 0700 directory through
#      the binary's file capabilities; `localhost` is resolved by the image's glibc
#      through its nsswitch.conf)
#   3. the pushed tree is compared with the source.
# Any failure exits non-zero with what the failing step printed.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-}
if [[ -z "$bin" ]]; then # the newer of the release and debug builds
  bin=$(ls -t target/release/ferry target/debug/ferry 2>/dev/null | head -n1 || true)
fi
tag=${2:-localhost/ferry:dev}
[[ -x "$bin" ]] || { echo "build.sh: no ferry binary at $bin; run cargo build first" >&2; exit 1; }

work=$(mktemp -d /tmp/ferry-image.XXXXXX)
cleanup() {
  [[ -n "${serve_pid:-}" ]] && kill "$serve_pid" 2>/dev/null || true
  [[ -n "${ctr:-}" ]] && podman rm -f "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- stage the root filesystem ------------------------------------------------------
ctx=$work/context
root=$ctx/rootfs
mkdir -p "$root"/{etc,lib64,tmp,mnt,proc,sys,dev} "$root/etc/ferry/tls"
chmod 1777 "$root/tmp"
objcopy --strip-debug "$bin" "$root/ferry" 2>/dev/null || cp "$bin" "$root/ferry"
chmod 0755 "$root/ferry"
# File capabilities, permitted only (+p, not +ep): a non-root container gets none of its
# `capabilities.add` otherwise (Kubernetes has no ambient capabilities). The kernel
# grants them bounded by the pod's capabilities, so a restricted pod (drop ALL, no
# privilege escalation) still gets none, and without the effective bit execve never
# fails for a missing one; ferry raises what it was permitted at start.
file_caps=cap_chown,cap_dac_override,cap_dac_read_search,cap_fowner,cap_fsetid
setcap "$file_caps+p" "$root/ferry"

copy_lib() { # copy a library to the same path inside the image, resolving symlinks
  local lib=$1 dest="$root$1"
  mkdir -p "$(dirname "$dest")"
  cp -L "$lib" "$dest"
}
# Everything the binary links, the loader, and glibc's NSS modules for files and DNS
# (loaded with dlopen, so ldd does not list them).
for lib in $(ldd "$bin" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }'); do
  copy_lib "$lib"
done
libdir=$(dirname "$(ldd "$bin" | awk '/libc\.so/ { print $3 }')")
for nss in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
  [[ -e "$libdir/$nss" ]] && copy_lib "$libdir/$nss"
done

cat >"$root/etc/nsswitch.conf" <<'NSS'
passwd: files
group:  files
hosts:  files dns
NSS
# OpenShift runs the image as an arbitrary UID in group 0; 1001 is the default user.
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/:/sbin/nologin
ferry:x:1001:0:ferry:/:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
ferry:x:1001:
nobody:x:65534:
GROUP
# Kubernetes mounts its own /etc/hosts and /etc/resolv.conf over these.
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
cp container/Containerfile "$ctx/Containerfile"

# --- build --------------------------------------------------------------------------
echo "== podman build $tag from $bin"
podman build --quiet -t "$tag" -f "$ctx/Containerfile" "$ctx"
podman image inspect --format 'image {{.Id}} size {{.Size}} user {{.Config.User}}' "$tag"

[[ "${VERIFY:-1}" == 1 ]] || exit 0

# --- take the root filesystem back out of the image ----------------------------------
rootfs=$work/rootfs
mkdir -p "$rootfs"
if ctr=$(podman create "$tag" 2>/dev/null); then
  podman export "$ctr" | tar --xattrs --xattrs-include='security.capability' -x -C "$rootfs"
else
  echo "   podman create failed; unpacking the saved image instead"
  podman save --format docker-archive -o "$work/image.tar" "$tag"
  mkdir -p "$work/image" && tar -x -C "$work/image" -f "$work/image.tar"
  for layer in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' "$work/image/manifest.json"); do
    tar --xattrs --xattrs-include='security.capability' -x -C "$rootfs" -f "$work/image/$layer"
  done
fi
[[ -x "$rootfs/ferry" ]] || { echo "build.sh: the image has no /ferry" >&2; exit 1; }
caps=$(getcap "$rootfs/ferry")
[[ "$caps" == *"cap_dac_read_search"*"=p"* ]] \
  || { echo "build.sh: the image's /ferry lost its file capabilities: ${caps:-none}" >&2; exit 1; }

# --- 1. the binary starts with only the image's libraries ----------------------------
echo "== chroot rootfs /ferry --version"
chroot "$rootfs" /ferry --version

# --- 2. a real push whose target and source are the image's binary -------------------
echo "== push through the image's binary (serve --run-as 1001:0, push to localhost)"
"$bin" certs --out "$rootfs/work/certs" --server-name localhost >/dev/null
mkdir -p "$rootfs/work/src/sub" "$rootfs/work/vol"
head -c 3000000 /dev/urandom >"$rootfs/work/src/big.bin"
echo hello >"$rootfs/work/src/sub/hello.txt"
ln -s sub/hello.txt "$rootfs/work/src/link"
# The target volume belongs to group 0, as OpenShift's arbitrary UIDs expect.
chgrp 0 "$rootfs/work/vol" && chmod 2770 "$rootfs/work/vol"
chmod 0755 "$rootfs/work"
# Another user's private directory: the push runs as uid 1001 and reads it through the
# image's file capabilities (CAP_DAC_READ_SEARCH), as a `privileges: least` pod does.
mkdir -p "$rootfs/work/src/private" && echo private >"$rootfs/work/src/private/note"
chown -R 2001:2001 "$rootfs/work/src/private"
chmod 0700 "$rootfs/work/src/private" && chmod 0600 "$rootfs/work/src/private/note"
chroot "$rootfs" /ferry serve --listen 127.0.0.1:0 --tls-dir /work/certs/server \
  --volume vol=/work/vol --once --run-as 1001:0 >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
for _ in $(seq 100); do
  grep -q '^listening ' "$work/serve.out" 2>/dev/null && break
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.1
done
addr=$(sed -n 's/^listening //p' "$work/serve.out")
if [[ -z "$addr" ]]; then
  echo "build.sh: the image's ferry serve did not start:" >&2; cat "$work/serve.err" >&2; exit 1
fi
port=${addr##*:}
# The summary goes to /tmp: a push keeps only CAP_DAC_READ_SEARCH, it cannot write
# into root's /work.
if ! chroot --userspec=1001:0 "$rootfs" /ferry push /work/src "ferry://localhost:$port/vol" \
    --tls-dir /work/certs/client --summary-file /tmp/summary.json; then
  echo "build.sh: the push through the image's binary failed; target log:" >&2
  cat "$work/serve.err" >&2; exit 1
fi
wait "$serve_pid" || { echo "build.sh: serve --once exited non-zero:" >&2; cat "$work/serve.err" >&2; exit 1; }
serve_pid=

# --- 3. the target holds the source, written by uid 1001 ------------------------------
diff -r --no-dereference "$rootfs/work/src" "$rootfs/work/vol"
owner=$(stat -c %u "$rootfs/work/vol/big.bin")
[[ "$owner" == 1001 ]] || { echo "build.sh: target files owned by $owner, not 1001" >&2; exit 1; }
grep -q '"exit_code":0' "$rootfs/tmp/summary.json" \
  || { echo "build.sh: unexpected summary: $(cat "$rootfs/tmp/summary.json")" >&2; exit 1; }
echo "ok: image $tag runs ferry serve and ferry push ($(cat "$rootfs/tmp/summary.json" | head -c 120)...)"
