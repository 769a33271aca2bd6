#!/bin/sh
# The real HA daemons' timing, for tests/ha_timing (docs/ha-timing.md). Runs inside
# tests/vm/lvsim-vm as root, in a directory holding `hat` (the test binary: HTTP server
# and VRRP listener), `export/` (what `lvsim export` wrote) and an empty `out/`.
#
#   sh ha-timing.sh keepalived    VRRP pair lb1/lb2, HTTP_GET checks of web1/web2
#   sh ha-timing.sh ldirectord    one director, negotiate checks; web2 crashes, web3 hangs
#
#   ns lb1 10.0.0.2   ns lb2 10.0.0.3   ns web1 10.0.0.11  web2 .12 ...  ns obs 10.0.0.9
#        |                 |                  |                              |
#   -----+-----------------+------------------+------------------------------+--- br0
#
# br0 is in the root namespace, without an address. obs logs every VRRP advert it hears:
# a router sends one the moment it becomes MASTER (keepalived's vrrp_state_goto_master()
# sends it with the gratuitous ARPs, as it adds the VIP), so the first advert of lb2 is
# when the VIP moved, to 10 ms; a poll of lb2's addresses (slower: it starts processes)
# confirms it.
#
# Every time is the guest's monotonic clock (/proc/uptime, 10 ms steps). Results are
# `KEY VALUE` lines in out/result; the daemons' logs, the checks each web server saw
# (`UPTIME PEER PATH`) and the adverts obs heard (`UPTIME SOURCE PRIORITY`) are in out/.
set -eu
W=$PWD
OUT=$W/out
HAT=$W/hat
mkdir -p "$OUT"

now() { read -r up _ </proc/uptime; echo "$up"; }
result() { echo "$1 $2" >>"$OUT/result"; echo "$1 $2"; }
in_ns() { _ns=$1; shift; ip netns exec "$_ns" "$@"; }
# wait_for SECONDS CODE: runs CODE every 20 ms until it succeeds; fails after SECONDS.
wait_for() {
  _end=$(( $(cut -d. -f1 /proc/uptime) + $1 ))
  until sh -c "$2" >/dev/null 2>&1; do
    [ "$(cut -d. -f1 /proc/uptime)" -lt "$_end" ] || { echo "timed out waiting for: $2"; return 1; }
    sleep 0.02
  done
}

ip link add br0 type bridge
ip link set br0 up
node() { # node NS ADDR: a namespace on br0
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip link add "lan-$1" type veth peer name eth0 netns "$1"
  ip link set "lan-$1" master br0 up
  ip -n "$1" addr add "$2/24" brd + dev eth0
  ip -n "$1" link set eth0 up
}
web() { # web NS ADDR: a real server answering on port 80
  node "$1" "$2"
  in_ns "$1" "$HAT" serve "$2:80" "$OUT/$1.checks" &
  wait_for 10 "test -e $OUT/$1.checks"
}
# A crashed host answers nothing. Directors know its MAC for good, so that a dead
# neighbour does not turn a silent timeout into an early "host unreachable".
pin_neighbours() { # pin_neighbours DIRECTOR_NS WEB_NS...
  _d=$1; shift
  for _w in "$@"; do
    _a=$(ip -n "$_w" -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]}')
    _m=$(ip -n "$_w" -o link show dev eth0 | sed 's/.*link\/ether \([^ ]*\).*/\1/')
    ip -n "$_d" neigh replace "$_a" lladdr "$_m" dev eth0 nud permanent
  done
}
crash() { ip -n "$1" link set eth0 down; }
# vip_poll NS: prints when (uptime) NS was first seen holding the VIP 10.0.0.100 (polled
# in NS, every 20 ms).
vip_poll() {
  in_ns "$1" sh -c "until ip -4 addr show dev eth0 | grep -q ' 10.0.0.100/'; do sleep 0.02; done
    read -r up _ </proc/uptime; echo \$up"
}
# last_check WEB FROM: when WEB last saw a check from FROM (empty if never).
last_check() { awk -v f="$2" '$2 == f { t = $1 } END { print t }' "$OUT/$1.checks"; }
# after_next_check WEB FROM DELAY: waits for WEB's next check from FROM, then DELAY s.
after_next_check() {
  _before=$(last_check "$1" "$2")
  wait_for 30 "test \"\$(awk -v f=$2 '\$2 == f { t = \$1 } END { print t }' $OUT/$1.checks)\" != '$_before'"
  sleep "$3"
}
# weight NS RIP: RIP:80's weight in NS's IPVS table (0 if absent).
weight() {
  _hex=$(echo "$2" | awk -F. '{ printf "%02X%02X%02X%02X:0050", $1, $2, $3, $4 }')
  ip netns exec "$1" awk -v a="$_hex" '$1 == "->" && $2 == a { w = $4 } END { print w + 0 }' /proc/net/ip_vs
}
# serving NS RIP: waits until RIP:80 has a weight in NS's table (its checks passed), so
# that a fault starts from a server in service.
serving() {
  _n=0
  until [ "$(weight "$1" "$2")" -gt 0 ]; do
    _n=$((_n + 1))
    [ $_n -lt 1000 ] || { echo "timed out: $2 never in service in $1"; return 1; }
    sleep 0.05
  done
}
# gone NS RIP: prints when (uptime) RIP:80 was first seen out of NS's IPVS table or with
# weight 0. It reads (polled) /proc/net/ip_vs with the shell's own `read` every 20 ms (no ipvsadm process a poll:
# under TCG one costs ~0.1 s).
gone() {
  _hex=$(echo "$2" | awk -F. '{ printf "%02X%02X%02X%02X:0050", $1, $2, $3, $4 }')
  in_ns "$1" sh -c '
    while :; do
      w=0
      while read -r arrow addr fwd weight rest; do
        [ "$arrow" = "->" ] && [ "$addr" = "'"$_hex"'" ] && w=$weight
      done </proc/net/ip_vs
      if [ "$w" = 0 ]; then read -r up _ </proc/uptime; echo "$up"; exit 0; fi
      sleep 0.02
    done'
}

keepalived_run() {
  node lb1 10.0.0.2
  node lb2 10.0.0.3
  web web1 10.0.0.11
  web web2 10.0.0.12
  pin_neighbours lb1 web1 web2
  pin_neighbours lb2 web1 web2
  node obs 10.0.0.9
  in_ns obs "$HAT" adverts 10.0.0.9 "$OUT/adverts" &
  wait_for 10 "test -e $OUT/adverts"
  for d in lb1 lb2; do
    in_ns $d keepalived --dont-fork --log-console --log-detail -f "$W/export/keepalived-$d.conf" \
      -p /run/ka-$d.pid -r /run/ka-$d-vrrp.pid -c /run/ka-$d-chk.pid >"$OUT/keepalived-$d.log" 2>&1 &
  done
  result start "$(now)"
  wait_for 30 "test -s $OUT/adverts"
  # A few adverts, then the master dies half-way between two of them.
  wait_for 20 "test \$(wc -l <$OUT/adverts) -ge 4"
  sleep 0.5
  # The director dies (DirectorDown): every keepalived process of lb1 at once. SIGKILL of
  # the main process alone is not a death: its VRRP child gets SIGTERM
  # (PR_SET_PDEATHSIG), sends a priority-0 advert, and lb2 takes over after Skew_Time
  # only. Stopped first, no process can act on the others' deaths.
  pids=$(ip netns pids lb1)
  result kill "$(now)"
  kill -STOP $pids
  kill -KILL $pids
  result lb2_vip_polled "$(vip_poll lb2)"
  # web2's host crashes 0.3 s after lb2's next check of it.
  serving lb2 10.0.0.12
  after_next_check web2 10.0.0.3 0.3
  result crash "$(now)"
  crash web2
  result removed "$(gone lb2 10.0.0.12)"
  ip netns exec lb2 ipvsadm -L -n >"$OUT/ipvsadm-after"
}

ldirectord_run() {
  # ldirectord writes /var/run/ldirectord.CONFIG.pid: the guest's own (initramfs) /var.
  mkdir -p /var/run /var/log
  node lvs 10.0.0.1
  for i in 1 2 3 4; do web web$i 10.0.0.1$i; done
  pin_neighbours lvs web1 web2 web3 web4
  # The exported file, as is (an absolute path: ldirectord then does not look in
  # /etc/ha.d); -d keeps it in the foreground, logging to stdout.
  in_ns lvs ldirectord -d "$W/export/ldirectord.cf" start >"$OUT/ldirectord.log" 2>&1 &
  result start "$(now)"
  wait_for 60 "test -s $OUT/web4.checks"
  result first_round "$(now)"
  # web2's host crashes 0.3 s after its next check; then web3's HTTP server hangs
  # (SIGSTOP: its kernel still accepts connections, no answer comes) 0.3 s after its
  # next check.
  serving lvs 10.0.0.12
  after_next_check web2 10.0.0.1 0.3
  result crash "$(now)"
  crash web2
  result crash_quiesced "$(gone lvs 10.0.0.12)"
  serving lvs 10.0.0.13
  after_next_check web3 10.0.0.1 0.3
  hung=$(ip netns pids web3)
  result hang "$(now)"
  kill -STOP $hung
  result hang_quiesced "$(gone lvs 10.0.0.13)"
  in_ns lvs ipvsadm -L -n >"$OUT/ipvsadm-after"
}

# hb_node NAME: heartbeat for director NAME in its namespace, with a UTS namespace (its
# node name is NAME) and a mount namespace of its own: /etc/ha.d (the host's resource
# scripts, ha-etc/, plus the exported ha.cf, haresources, ldirectord.cf and an authkeys),
# /var/run and /var/lib/heartbeat private to it.
hb_node() {
  _etc=/tmp/ha-$1
  mkdir -p "$_etc" /etc/ha.d /var/lib/heartbeat
  cp -a "$W/ha-etc/." "$_etc/"
  cp "$W/export/haresources" "$W/export/ldirectord.cf" "$_etc/"
  # LOUD: the exported ha.cf logs to syslog (logfacility), which the guest lacks; the
  # copy also logs to a file. Nothing else changes.
  { cat "$W/export/ha.cf"; echo "logfile $OUT/heartbeat-$1.log"; echo "debugfile $OUT/heartbeat-$1.debug"; } >"$_etc/ha.cf"
  # heartbeat needs a shared key; lvsim exports none (it is a secret).
  printf 'auth 1\n1 sha1 lvsim-ha-timing\n' >"$_etc/authkeys"
  chmod 600 "$_etc/authkeys"
  ip netns exec "$1" unshare --uts --mount sh -c "
    hostname $1
    mount --bind $_etc /etc/ha.d
    mount -t tmpfs run /run
    mkdir -p /run/heartbeat/rsctmp /run/heartbeat/ccm /run/resource-agents
    mount -t tmpfs lib /var/lib/heartbeat
    mkdir -p /var/lib/heartbeat/cores
    chown hacluster:haclient /run/heartbeat/ccm /var/lib/heartbeat
    exec /usr/libexec/heartbeat/heartbeat
  " >"$OUT/heartbeat-$1.out" 2>&1
}

heartbeat_run() {
  grep -q '^hacluster:' /etc/passwd || echo 'hacluster:x:102:106::/var/lib/heartbeat:/bin/false' >>/etc/passwd
  grep -q '^haclient:' /etc/group || echo 'haclient:x:106:' >>/etc/group
  mkdir -p /var/run /var/log
  node lb1 10.0.0.2
  node lb2 10.0.0.3
  node obs 10.0.0.9
  web web1 10.0.0.11
  web web2 10.0.0.12
  in_ns obs "$HAT" keepalives 10.0.0.255:694 "$OUT/keepalives" &
  wait_for 10 "test -e $OUT/keepalives"
  hb_node lb1
  hb_node lb2
  result start "$(now)"
  # Both nodes up and hearing each other (each logs the other's link up).
  wait_for 120 "grep -q 'Link lb2:eth0 up' $OUT/heartbeat-lb1.log && grep -q 'Link lb1:eth0 up' $OUT/heartbeat-lb2.log"
  result both_up "$(now)"
  # Past lb2's start-up resource negotiation (a node that died during it was declared
  # dead 2.8 s after deadtime), and three more keepalives of lb1; then lb1 dies. (lb1
  # may still be running its resource scripts: under TCG they take 20-70 s.)
  wait_for 60 "grep -q 'Initial resource acquisition complete' $OUT/heartbeat-lb2.log"
  result settled "$(now)"
  n0=$(grep -c '10.0.0.2 status' "$OUT/keepalives")
  wait_for 20 "test \$(grep -c '10.0.0.2 status' $OUT/keepalives) -ge $((n0 + 3))"
  sleep 0.5
  pids=$(ip netns pids lb1)
  result kill "$(now)"
  # Resource scripts come and go: a pid may be gone by now.
  kill -STOP $pids 2>/dev/null || true
  kill -KILL $pids 2>/dev/null || true
  # heartbeat writes its log itself (no logd), at once: the line's arrival is the
  # declaration's time. (The VIP follows after the resource scripts, which under TCG
  # take tens of seconds: not waited for.)
  wait_for 60 "grep -q 'node lb1: is dead' $OUT/heartbeat-lb2.log"
  result lb1_dead "$(now)"
}

case "${1:-}" in
  keepalived) keepalived_run ;;
  heartbeat) heartbeat_run ;;
  ldirectord) ldirectord_run ;;
  *) echo "usage: ha-timing.sh keepalived|ldirectord"; exit 2 ;;
esac
echo "ha-timing: done"
