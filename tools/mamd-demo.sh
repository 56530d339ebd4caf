#!/bin/bash
# mamd demo: runs mamd on a private bus with the example configuration, the
# office365 plugin and a loopback OpenID provider (mamd-dev-idp) that mints
# real RS256 access tokens, and walks the guide's enrollment flows with mamctl.
#
#   tools/mamd-demo.sh [BUILD_DIR]      (default: ./build)
#
# Exits 0 when every step gave the expected result, non-zero otherwise.
# Everything lives in a temporary directory that is removed on exit.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$SRC/build}
if [ ! -d "$BUILD" ]; then
  echo "mamd-demo: no build directory $BUILD: run meson setup and ninja first" >&2
  exit 2
fi
BUILD=$(cd "$BUILD" && pwd)

MAMD=$BUILD/daemon/mamd
MAMCTL=$BUILD/tools/mamctl
LICENSE_TOOL=$BUILD/tools/mamd-license-tool
DEV_IDP=$BUILD/tools/mamd-dev-idp
PLUGIN_DIR=$BUILD/plugins/oauth
for f in "$MAMD" "$MAMCTL" "$LICENSE_TOOL" "$DEV_IDP"; do
  if [ ! -x "$f" ]; then
    echo "mamd-demo: $f is missing: build with ninja -C $BUILD first" >&2
    exit 2
  fi
done
if [ ! -f "$PLUGIN_DIR/mamd-oauth.so" ]; then
  echo "mamd-demo: no office365 plugin in $PLUGIN_DIR: build with ninja -C $BUILD first" >&2
  exit 2
fi
command -v dbus-daemon >/dev/null || { echo "mamd-demo: dbus-daemon is not installed" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mamd-demo.XXXXXX")
BUS_PID=
MAMD_PID=
MONITOR_PID=
IDP_PID=

cleanup() {
  local pid
  for pid in "$MONITOR_PID" "$MAMD_PID" "$IDP_PID" "$BUS_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }

fail() {
  echo "mamd-demo: FAILED: $*" >&2
  if [ -s "$WORK/mamd.log" ]; then
    echo "--- mamd log (last 30 lines)" >&2
    tail -n 30 "$WORK/mamd.log" >&2
  fi
  exit 1
}

# ctl EXPECTED_EXIT ARGS...: runs mamctl, prints the command and its output,
# fails unless it exits with EXPECTED_EXIT; the output is left in $OUT.
OUT=
ctl() {
  local want=$1 rc
  shift
  printf '$ mamctl %s\n' "$*"
  set +e
  OUT=$("$MAMCTL" "$@" 2>&1)
  rc=$?
  set -e
  if [ -n "$OUT" ]; then
    printf '%s\n' "$OUT" | sed 's/^/    /'
  fi
  [ "$rc" -eq "$want" ] || fail "mamctl $1 exited $rc, expected $want"
}

# login SERVER WHO OID DEVICE EXPECTED_EXIT [TENANT]: mints an access token for
# OID at the dev IdP and signs in with it; the command is shown with the
# token elided (tokens never go to logs or terminals)
login() {
  local server=$1 who=$2 oid=$3 device=$4 want=$5 tenant=${6:-$TENANT} client token rc
  client=$(sed -n 's/^ClientId=//p' "$WORK/config/servers.d/$server.conf")
  token=$("$DEV_IDP" mint --authority "$AUTHORITY" --tenant "$tenant" --client "$client" \
    --scope login.mattermost --oid "$oid" --user "$who")
  printf '%s\n' "$token" >>"$WORK/tokens"
  printf '$ mamctl login %s office365 --platform ios --device-id %s --credential access-token=<%s>\n' \
    "$server" "$device" "token for $who, tenant $tenant"
  set +e
  OUT=$("$MAMCTL" login "$server" office365 --platform ios --device-id "$device" \
    --credential "access-token=$token" 2>&1)
  rc=$?
  set -e
  case "$OUT" in
    *"$token"*) fail "mamctl printed the access token" ;;
  esac
  printf '%s\n' "$OUT" | sed 's/^/    /'
  [ "$rc" -eq "$want" ] || fail "mamctl login exited $rc, expected $want"
}

# field NAME: the value of "NAME: value" in $OUT
field() { printf '%s\n' "$OUT" | sed -n "s/^$1: *//p" | head -n 1; }

expect_field() {
  local got
  got=$(field "$1")
  [ "$got" = "$2" ] || fail "expected $1 '$2', got '$got'"
}

say "setting up in $WORK"
cp -r "$SRC/data/examples" "$WORK/config"
mkdir "$WORK/state"
"$LICENSE_TOOL" generate-key "$WORK/license-private.pem" "$WORK/config/license-public.pem"
"$LICENSE_TOOL" sign --key "$WORK/license-private.pem" --sku advanced \
  --licensee "mamd demo" --days 30 --output "$WORK/config/license.json"
echo "config: $WORK/config (examples from data/examples, an advanced licence)"

TENANT=8f2c6a7e-3b1d-4c5e-9a0f-1d2e3f4a5b6c
CHAT_CLIENT=$(sed -n 's/^ClientId=//p' "$WORK/config/servers.d/chat.conf")
# the chat server's app secret, for the MAM service permission check
printf 'demo-client-secret\n' >"$WORK/chat-client-secret"
chmod 0600 "$WORK/chat-client-secret"

"$DEV_IDP" serve --tenant "$TENANT" --client "$CHAT_CLIENT" --secret demo-client-secret \
  --ready-file "$WORK/idp-authority" >"$WORK/idp.log" 2>&1 &
IDP_PID=$!
for _ in $(seq 100); do
  [ -s "$WORK/idp-authority" ] && break
  sleep 0.1
done
[ -s "$WORK/idp-authority" ] || fail "mamd-dev-idp did not start"
AUTHORITY=$(head -n 1 "$WORK/idp-authority")
echo "identity provider: $AUTHORITY (mamd-dev-idp, real RS256 tokens)"

# both servers use the dev IdP instead of login.microsoftonline.com
sed -i "s|^\[office365\]\$|[office365]\nAuthority=$AUTHORITY|" "$WORK"/config/servers.d/*.conf
sed -i "s|^\(Authority=.*\)\$|\1\nClientSecretFile=$WORK/chat-client-secret|" \
  "$WORK/config/servers.d/chat.conf"

cat >"$WORK/bus.conf" <<BUS
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=$WORK</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
BUS
dbus-daemon --config-file="$WORK/bus.conf" --nofork --print-address=3 3>"$WORK/bus-address" &
BUS_PID=$!
for _ in $(seq 100); do
  [ -s "$WORK/bus-address" ] && break
  sleep 0.1
done
[ -s "$WORK/bus-address" ] || fail "dbus-daemon did not start"
MAMD_BUS_ADDRESS=$(head -n 1 "$WORK/bus-address")
export MAMD_BUS_ADDRESS
echo "private bus: $MAMD_BUS_ADDRESS"

"$MAMD" --bus-address "$MAMD_BUS_ADDRESS" --config-dir "$WORK/config" \
  --state-dir "$WORK/state" --plugin-dir "$PLUGIN_DIR" 2>"$WORK/mamd.log" &
MAMD_PID=$!
for _ in $(seq 200); do
  "$MAMCTL" status >/dev/null 2>&1 && break
  kill -0 "$MAMD_PID" 2>/dev/null || fail "mamd exited during startup"
  sleep 0.1
done
"$MAMCTL" status >/dev/null 2>&1 || fail "mamd did not come up on the bus"
echo "mamd running (pid $MAMD_PID)"

"$MAMCTL" monitor >"$WORK/monitor.out" 2>"$WORK/monitor.err" &
MONITOR_PID=$!
for _ in $(seq 100); do
  grep -q monitoring "$WORK/monitor.err" 2>/dev/null && break
  sleep 0.1
done
grep -q monitoring "$WORK/monitor.err" || fail "mamctl monitor did not start"

ALICE=2d9c1f3e-7a4b-4e6d-8c5f-0b1a2c3d4e5f
BOB=6e5d4c3b-2a19-4807-b6f5-e4d3c2b1a098

say "the daemon, its servers and plugins"
ctl 0 status
expect_field licensed yes
# the office365 plugin fetches the signing keys and checks the MAM service
# permission in the background once the configuration is live
for _ in $(seq 100); do
  "$MAMCTL" servers 2>/dev/null | grep -q granted && break
  sleep 0.1
done
ctl 0 servers
case "$OUT" in
  *granted*) ;;
  *) fail "the MAM service permission of chat was not granted" ;;
esac
ctl 0 plugins

say "a token issued for another tenant is refused"
login chat mallory $ALICE iphone-mallory 1 0c3f5d2a-7b61-4e9a-9f10-2b3c4d5e6f70
case "$OUT" in
  *InvalidToken*) ;;
  *) fail "expected InvalidToken" ;;
esac

say "alice signs in on her iPhone: MAM applies, enrollment is required"
login chat alice $ALICE iphone-alice 0
expect_field state enrollment-required
expect_field object-id $ALICE
S1=$(field id)
ctl 4 check-access "$S1"

say "alice declines enrollment: still restricted, nothing removed, retry allowed"
ctl 0 report-enrollment "$S1" declined --status-code 219
expect_field state declined
ctl 4 check-access "$S1"

say "alice enrolls: the restriction is lifted"
ctl 0 report-enrollment "$S1" success --status-code 100
expect_field state enrolled
ctl 0 check-access "$S1"

say "bob signs in on his iPad and enrollment fails technically"
login chat bob $BOB ipad-bob 0
expect_field state enrollment-required
S2=$(field id)
ctl 0 report-enrollment "$S2" failed --status-code 201
expect_field state revoked
ctl 0 wipes
WIPE=$(printf '%s\n' "$OUT" | awk '$3 == "ipad-bob" { print $1; exit }')
[ -n "$WIPE" ] || fail "no pending wipe for ipad-bob"

say "the server is removed from bob's iPad: signing in again is refused"
login chat bob $BOB ipad-bob 1
case "$OUT" in
  *ServerRemoved*) ;;
  *) fail "expected ServerRemoved" ;;
esac

say "alice's session on the same server is untouched"
ctl 0 check-access "$S1"

say "the server cannot come back while the iPad has not confirmed the wipe"
ctl 1 re-add chat ipad-bob
case "$OUT" in
  *InvalidState*"$WIPE"*) ;;
  *) fail "expected InvalidState naming the pending wipe" ;;
esac

say "the iPad acknowledges the wipe; the administrator adds the server back"
ctl 0 ack-wipe "$WIPE"
ctl 0 wipes
case "$OUT" in
  *"$WIPE"*) fail "the wipe is still pending after its acknowledgement" ;;
esac
ctl 0 re-add chat ipad-bob
login chat bob $BOB ipad-bob 0
expect_field state enrollment-required

say "a server without MAM is not evaluated"
login intranet alice $ALICE iphone-alice 0
expect_field state active
ctl 0 check-access "$(field id)"
ctl 0 sessions

say "what mamctl monitor saw"
for _ in $(seq 100); do
  [ "$(grep -c WipeRequested "$WORK/monitor.out" || true)" -ge 1 ] \
    && [ "$(grep -c EnrollmentRequired "$WORK/monitor.out" || true)" -ge 3 ] && break
  sleep 0.1
done
kill -INT "$MONITOR_PID"
wait "$MONITOR_PID" || fail "mamctl monitor did not exit cleanly"
MONITOR_PID=
sed 's/^/    /' "$WORK/monitor.out"
for signal in EnrollmentRequired EnrollmentDeclined Enrolled SessionRevoked WipeRequested; do
  grep -q "^seq=[0-9]* $signal " "$WORK/monitor.out" || fail "monitor did not see $signal"
done
grep -q "^seq=[0-9]* EnrollmentRequired session=$S1 server=chat" "$WORK/monitor.out" \
  || fail "monitor did not see alice's EnrollmentRequired"

say "no access token reached mamd's log or a signal"
if grep -q -F -f "$WORK/tokens" "$WORK/mamd.log" "$WORK/monitor.out"; then
  fail "an access token appears in mamd's log or the monitor output"
fi
echo "checked $(wc -l <"$WORK/tokens") tokens against $WORK/mamd.log and the monitor output"

say "demo finished: every step gave the expected result"
