#!/bin/sh
# Runs inside the lvsim VM (tests/vm/lvsim-vm) as root, against the real kernel IPVS: the
# Prequal law in the live daemons.
#
#   client netns 192.168.10.2 --> VIP 192.168.10.100:80 on the director (the VM's root netns)
#                                  |  IPVS, LVS-NAT, wrr; feedbackd-master --law prequal
#                                  +-- br0 192.168.20.1/24
#                                       +-- rs1 netns 192.168.20.11  httpd (fast) + agent
#                                       +-- rs2 netns 192.168.20.12  httpd (slow CGI) + agent
#                                       +-- rs3 netns 192.168.20.13  httpd (fast, 8 requests
#                                                                     held 5 min) + agent
#
# Each agent measures its own server with the `prequal` module: requests in flight from
# the netns's socket table, latency by a probe of /cgi-bin/p on 127.0.0.1:80 (rs2's CGI
# sleeps 5 s before answering). Output: `== phase ==` headers, `ipvsadm -L -n` listings and
# `COUNT rsN n` lines for the Rust test; `FAIL why` and exit 1 on a timeout.
# Needs MASTER and AGENT (absolute paths of the binaries).
set -eu
W=/tmp/fbvm-prequal
mkdir -p $W
fail() { echo "FAIL $*"; ipvsadm -L -n; echo "--- master log"; cat $W/master.log; for i in 1 2 3; do echo "--- rs$i agent log"; tail -20 $W/rs$i/agent.log; done; exit 1; }
. "$(dirname "$0")/lib.sh"
count() {
  ip netns exec client sh -c "for i in \$(seq 1 $1); do curl -s -m 10 http://192.168.10.100/; done" \
    > $W/replies || true
  for i in 1 2 3; do echo "COUNT rs$i $(grep -c "^rs$i\$" $W/replies || true)"; done
}

ip link add br0 type bridge
ip addr add 192.168.20.1/24 dev br0
ip link set br0 up
for i in 1 2 3; do
  ip netns add rs$i
  ip link add vrs$i type veth peer name eth0 netns rs$i
  ip link set vrs$i master br0 up
  ip -n rs$i addr add 192.168.20.1$i/24 dev eth0
  ip -n rs$i link set eth0 up
  ip -n rs$i link set lo up
  ip -n rs$i route add default via 192.168.20.1
  mkdir -p $W/rs$i/www/cgi-bin
  echo rs$i > $W/rs$i/www/index.html
  delay=""
  [ $i = 2 ] && delay="sleep 5"
  printf '#!/bin/sh\n%s\necho "Content-Type: text/plain"\necho\necho rs%s\n' "$delay" $i \
    > $W/rs$i/www/cgi-bin/p
  chmod 755 $W/rs$i/www/cgi-bin/p
  # A request that takes 5 minutes: rs3's requests in flight.
  printf '#!/bin/sh\nsleep 300\necho "Content-Type: text/plain"\necho\n' > $W/rs$i/www/cgi-bin/hold
  chmod 755 $W/rs$i/www/cgi-bin/hold
  ip netns exec rs$i /bb/httpd -p 80 -h $W/rs$i/www
done
ip netns add client
ip link add vcl type veth peer name eth0 netns client
ip addr add 192.168.10.1/24 dev vcl
ip addr add 192.168.10.100/32 dev vcl
ip link set vcl up
ip -n client addr add 192.168.10.2/24 dev eth0
ip -n client link set eth0 up
ip -n client link set lo up
ip -n client route add default via 192.168.10.1
echo 1 > /proc/sys/net/ipv4/ip_forward

ipvsadm -A -t 192.168.10.100:80 -s wrr

# rs3's requests in flight: 8 requests of /cgi-bin/hold (5 minutes each), sent from
# the director straight to the server; closing the client ends them.
for n in 1 2 3 4 5 6 7 8; do
  { printf 'GET /cgi-bin/hold HTTP/1.0\r\n\r\n'; sleep 300; } | /bb/nc 192.168.20.13 80 > /dev/null 2>&1 &
  echo $! >> $W/held.pids
done
# (httpd listens on [::]:80: its IPv4 connections are in /proc/net/tcp6, which the agent
# reads too.)
wait_until 20 '[ "$(ip netns exec rs3 ss -Htn state established "( sport = :80 )" | wc -l)" = 8 ]' \
  "8 connections held open on rs3"

rm -f $W/keys $W/master.journal
for i in 1 2 3; do
  rm -f $W/rs$i/key
  "$MASTER" add-agent rs$i --address 192.168.20.1$i --service tcp:80 --keys-file $W/keys \
    --agent-key-out $W/rs$i/key > /dev/null || fail "add-agent rs$i"
done
# Prequal with the 34th percentile as the hot-cold line: rs2 reports less often (its
# probe takes 5 s), so rs3's probes are up to half the pool; the idle rs1's and rs2's
# are well over a third, so the line is 0 and rs3 (8) is hot. The weights are smoothed
# by half, so that one slow probe of rs1 does not move rs2's weight.
"$MASTER" --listen 192.168.20.1:7878 --status-listen 127.0.0.1:7879 --keys-file $W/keys \
  --law prequal --q-rif 0.34 --max-age 10s --pool-size 30 \
  --max-weight 10 --smoothing 0.5 --max-step 0 --dead-band 0 --slow-start 0s \
  --rescan-interval 1s --quiesce-after 30s --remove-after 60s --record $W/master.journal \
  >> $W/master.log 2>&1 &
for i in 1 2 3; do
  cat > $W/rs$i/agent.conf <<CONF
director = 192.168.20.1
agent_id = rs$i
key_file = $W/rs$i/key
interval = 500ms
service = http
        protocol = TCP
        port = 80
        forwarding = NAT
        module = prequal send="GET /cgi-bin/p HTTP/1.0\r\n\r\n" timeout_ms=8000
CONF
  ip netns exec rs$i "$AGENT" -c $W/rs$i/agent.conf > $W/rs$i/agent.log 2>&1 &
  echo $! >> $W/agents.pids
done

echo "T $(cut -d" " -f1 /proc/uptime) agents started"
echo "== hot and slow =="
# rs1: cold and the fastest, max_weight; rs2: cold, 10 x L1 / L2 with L2 >= 5 s, so 1
# while rs1 answers within 750 ms; rs3: hot, the lowest cold weight x 0 / 8, so 1.
#
# The clients' own connections are requests in flight too (Prequal then moves the
# weights, as it should): the agents are paused while the kernel's wrr is counted, so
# the count shows the weights the master set (30 s of silence before a quiesce). A
# report between the wait and the pause may have moved a weight: then again.
tries=0
while :; do
  wait_until 60 '[ "$(weight_of 192.168.20.11)" = 10 ] && [ "$(weight_of 192.168.20.12)" = 1 ] && [ "$(weight_of 192.168.20.13)" = 1 ]' \
    "weights 10, 1, 1"
  for p in $(cat $W/agents.pids); do kill -STOP "$p"; done
  sleep 0.2 # a change the master was applying lands
  [ "$(weight_of 192.168.20.11) $(weight_of 192.168.20.12) $(weight_of 192.168.20.13)" = "10 1 1" ] && break
  for p in $(cat $W/agents.pids); do kill -CONT "$p"; done
  tries=$((tries + 1))
  [ $tries -lt 5 ] || fail "weights 10, 1, 1 did not hold until the agents paused (5 tries)"
done
ipvsadm -L -n
count 24
echo "-- after counting"
ipvsadm -L -n
for p in $(cat $W/agents.pids); do kill -CONT "$p"; done
# A probe the pause caught measured the pause too (a slow rs1 lifts rs2's weight for a
# report or two): wait for the next probes before the next phase.
wait_until 60 '[ "$(weight_of 192.168.20.11)" = 10 ] && [ "$(weight_of 192.168.20.12)" = 1 ] && [ "$(weight_of 192.168.20.13)" = 1 ]' \
  "weights 10, 1, 1 again after the pause"

echo "T $(cut -d" " -f1 /proc/uptime) counted"
echo "== rs3 released =="
# rs3's held connections close: its requests in flight fall to 0 and, once the pool's
# median is 0 for every server, it is cold and weighed by its latency like rs1.
for p in $(cat $W/held.pids); do kill "$p" 2>/dev/null || true; done
wait_until 60 '[ "$(weight_of 192.168.20.13)" -ge 2 ]' "rs3 cold again, its weight above 1"
ipvsadm -L -n

echo "T $(cut -d" " -f1 /proc/uptime) released"
echo "== journal =="
grep -c ' report ' $W/master.journal
head -80 $W/master.journal
echo "== master log =="
cat $W/master.log
echo "== done =="
