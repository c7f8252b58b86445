#!/usr/bin/env bash
# Distribution packages the test suite uses beyond Python: nginx (the auth_request and proxy
# deployment tests), Caddy (the forward_auth test), Chromium and CJK/emoji fonts (the browser
# test), wrk (the smoke runs of bench/http.py and bench/authcache.py), Apache with mod_wsgi and
# uWSGI (the server matrix and sub-path mount tests), redis-server (the session store's revocation
# tests, which start their own on loopback). Installs what is missing when run as root on a Debian
# or Ubuntu machine; otherwise says what is missing: those tests are then skipped with the reason.
set -euo pipefail

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v caddy >/dev/null || need+=(caddy)
for package in chromium fonts-noto-cjk fonts-noto-color-emoji apache2 libapache2-mod-wsgi-py3 \
    uwsgi-core uwsgi-plugin-python3 redis-server; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || need+=("$package")
done
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing from the distribution: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
    echo "not installed (their tests will be skipped): ${need[*]}" >&2
fi
