#!/usr/bin/env bash
# The real translated text the tests read: gettext catalogs (.mo) of Debian packages, for the locales the tests use.
# Downloaded as .deb files (`apt-get download`: no root, nothing installed) and unpacked into tests/text/locale/,
# so the tests find the same text on a slim image whose dpkg excludes /usr/share/locale. Without apt, the tests
# read the machine's /usr/share/locale instead (conftest.LOCALE_DIRS) and say so when it is too thin.
set -euo pipefail
cd "$(dirname "$0")"
DEST=locale
LOCALES=(zh_TW zh_CN th ja)
# the packages that carry those catalogs on Debian 12 (bookworm), found with `dpkg -S` on the full image
PACKAGES=(adduser appstream apt at-spi2-common bash binutils-common coreutils diffutils dpkg findutils gettext
  gettext-base git gnupg-l10n grep gsettings-desktop-schemas libapt-pkg6.0 libavahi-common-data libc-l10n libelf1
  libgdk-pixbuf2.0-common libglib2.0-data libgnutls30 libgstreamer1.0-0 libgtk2.0-common libidn2-0 libpam-runtime
  libpq5 login make man-db net-tools packagekit polkitd postgresql-15 postgresql-client-15 procps psmisc python-apt-common sed
  shared-mime-info software-properties-common systemd tar wget xdg-user-dirs xkb-data xz-utils)

if [ -f "$DEST/.complete" ]; then exit 0; fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  echo "tests/text: no apt-get here; the tests read /usr/share/locale" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "${PACKAGES[@]}" >/dev/null 2>"$work/apt.log") || {
  # a package that is not in this release's index: fetch the others one by one
  for p in "${PACKAGES[@]}"; do (cd "$work" && apt-get download "$p" >/dev/null 2>&1) || echo "tests/text: no package $p" >&2; done
}
rm -rf "$DEST.partial" && mkdir -p "$DEST.partial"
for deb in "$work"/*.deb; do
  mkdir -p "$work/x" && dpkg-deb -x "$deb" "$work/x"
  for l in "${LOCALES[@]}"; do
    src="$work/x/usr/share/locale/$l/LC_MESSAGES"
    if [ -d "$src" ]; then mkdir -p "$DEST.partial/$l/LC_MESSAGES" && cp -f "$src"/*.mo "$DEST.partial/$l/LC_MESSAGES/" 2>/dev/null || true; fi
  done
  rm -rf "$work/x"
done
touch "$DEST.partial/.complete"
rm -rf "$DEST" && mv "$DEST.partial" "$DEST"
echo "tests/text: $(find "$DEST" -name '*.mo' | wc -l) catalogs in tests/text/$DEST" >&2
