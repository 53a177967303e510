#!/usr/bin/env bash
# images.sh [SERVICE...]: builds the service images of docker/Dockerfile on this machine with
# Debian's buildah, from a Debian bookworm base made with debootstrap (no registry image is
# needed), and runs each image's `--version` as its user 10001. Not part of make test (a build
# compiles the service, minutes each); docs/machine-notes.md has what it does here.
#
# Containers with their own namespaces and cgroups cannot be created on these machines (crun
# fails, docs/machine-notes.md), so buildah runs every RUN step and the smoke test with
# `--isolation chroot`: the image's filesystem and user, the host's kernel namespaces.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${SB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}/deploy/images
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(gateway auth messages outbox files realtime notifier gc)
command -v buildah >/dev/null && command -v debootstrap >/dev/null ||
	{ echo "images: needs Debian's buildah and debootstrap (apt-get install buildah debootstrap)" >&2; exit 1; }
mkdir -p "$cache"

# The base: debootstrap --variant=minbase, imported as localhost/debian:bookworm and, the same
# tree, as :bookworm-slim (minbase is already the slim set of packages).
if ! buildah inspect --type image localhost/debian:bookworm >/dev/null 2>&1; then
	if [ ! -x "$cache/rootfs-bookworm/usr/bin/apt-get" ]; then
		rm -rf "$cache/rootfs-bookworm"
		debootstrap --variant=minbase bookworm "$cache/rootfs-bookworm" http://deb.debian.org/debian >"$cache/debootstrap.log"
	fi
	rm -rf "$cache/rootfs-bookworm/var/cache/apt/archives/"*.deb "$cache/rootfs-bookworm/var/lib/apt/lists/"*
	tar -C "$cache/rootfs-bookworm" -c . | buildah import - localhost/debian:bookworm >/dev/null 2>&1 ||
		{ c=$(buildah from scratch) && m=$(buildah mount "$c") && cp -a "$cache/rootfs-bookworm/." "$m/" &&
			buildah umount "$c" >/dev/null && buildah commit -q "$c" localhost/debian:bookworm >/dev/null && buildah rm "$c" >/dev/null; }
	buildah tag localhost/debian:bookworm localhost/debian:bookworm-slim
fi

for s in "${services[@]}"; do
	t0=$(date +%s)
	buildah bud --isolation chroot --layers -q -f "$root/docker/Dockerfile" \
		--build-arg BASE=localhost/debian --build-arg SERVICE="$s" -t "localhost/sb-$s:dev" "$root" >"$cache/build-$s.log" 2>&1 ||
		{ tail -n 30 "$cache/build-$s.log"; echo "images: build of sb-$s failed" >&2; exit 1; }
	c=$(buildah from "localhost/sb-$s:dev")
	v=$(buildah run --isolation chroot --user 10001:10001 "$c" -- /usr/local/bin/sb-service --version </dev/null 2>&1) || true
	buildah rm "$c" >/dev/null
	[[ $v == "sb-$s "* ]] || { echo "images: sb-$s --version printed '$v'" >&2; exit 1; }
	size=$(buildah images --format '{{.Size}}' "localhost/sb-$s:dev")
	echo "images: sb-$s built in $(($(date +%s) - t0)) s ($size), --version as user 10001: $v"
done
