#!/bin/sh
# Runs inside the lvsim VM (tests/vm/lvsim-vm) as root, against the real kernel IPVS.
#
#   client netns 192.168.10.2 --> VIP 192.168.10.100:80 on the director (the VM's root netns)
#                                  |  IPVS, LVS-NAT, wrr; feedbackd-master on 192.168.20.1:7878
#                                  +-- br0 192.168.20.1/24
#                                       +-- rs1 netns 192.168.20.11  httpd + feedbackd-agent
#                                       +-- rs2 netns 192.168.20.12  httpd + feedbackd-agent
#                                       +-- rs3 netns 192.168.20.13  httpd + feedbackd-agent
#
# Each agent reports the capacity written in /tmp/rsN/load (file module), so the test can
# change one server's load. Output: `== phase ==` headers, `ipvsadm -L -n` listings and
# `COUNT rsN n` lines for the Rust test to check; `FAIL why` and exit 1 on a timeout.
# Needs MASTER and AGENT (absolute paths of the binaries).
set -eu
W=/tmp/fbvm
mkdir -p $W
fail() { echo "FAIL $*"; echo "--- master log"; cat $W/master.log; for i in 1 2 3; do echo "--- rs$i agent log"; cat $W/rs$i/agent.log; done; exit 1; }
. "$(dirname "$0")/lib.sh"
count() {
  ip netns exec client sh -c "for i in \$(seq 1 $1); do curl -s -m 5 http://192.168.10.100/; done" \
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
  mkdir -p $W/rs$i/www
  echo rs$i > $W/rs$i/www/index.html
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

# The only thing the master needs: the virtual service.
ipvsadm -A -t 192.168.10.100:80 -s wrr

# Each agent's own key, allowed to claim its own address for tcp:80 only.
rm -f $W/keys $W/master.journal
for i in 1 2 3; do
  rm -f $W/rs$i/key
  "$MASTER" add-agent rs$i --address 192.168.20.1$i --service tcp:80 --keys-file $W/keys \
    --agent-key-out $W/rs$i/key > /dev/null || fail "add-agent rs$i"
done

start_master() {
  "$MASTER" --listen 192.168.20.1:7878 --status-listen 127.0.0.1:7879 --keys-file $W/keys \
    --max-weight 10 --smoothing 1 --max-step 0 --dead-band 0 --slow-start 0s \
    --rescan-interval 1s --quiesce-after 30s --remove-after 60s --record $W/master.journal \
    >> $W/master.log 2>&1 &
  echo $! > $W/master.pid
}
start_master
for i in 1 2 3; do
  echo 0.9 > $W/rs$i/load
  cat > $W/rs$i/agent.conf <<CONF
director = 192.168.20.1
agent_id = rs$i
key_file = $W/rs$i/key
interval = 300ms
service = http
        protocol = TCP
        port = 80
        module = file path=$W/rs$i/load scale=1
        forwarding = NAT
CONF
  ip netns exec rs$i "$AGENT" -c $W/rs$i/agent.conf > $W/rs$i/agent.log 2>&1 &
done

echo "== initial =="
wait_until 60 '[ "$(weight_of 192.168.20.11)" = 9 ] && [ "$(weight_of 192.168.20.12)" = 9 ] && [ "$(weight_of 192.168.20.13)" = 9 ]' \
  "three real servers added with weight 9"
ipvsadm -L -n
count 27

echo "== rs1 busy =="
echo 0.2 > $W/rs1/load
wait_until 30 '[ "$(weight_of 192.168.20.11)" = 3 ]' "rs1's weight follows its load to 3"
ipvsadm -L -n
cat /proc/net/ip_vs
count 42

echo "== master restart =="
kill -TERM "$(cat $W/master.pid)"
wait_until 10 '! kill -0 "$(cat $W/master.pid)" 2>/dev/null' "the master exits on SIGTERM"
echo "-- after the master exited"
ipvsadm -L -n
start_master
wait_until 30 '[ "$(grep -c "registered from" $W/master.log)" -ge 6 ]' "the agents register with the new master"
echo "-- after the new master started"
ipvsadm -L -n
echo 0.5 > $W/rs2/load
wait_until 30 '[ "$(weight_of 192.168.20.12)" = 6 ]' "the new master manages the adopted entries (rs2 to 6)"
echo "== rs2 half busy =="
ipvsadm -L -n
echo "== status =="
"$MASTER" status --addr 127.0.0.1:7879
echo "== kill -9 =="
# Under load (three agents reporting every 300 ms): the kernel's table must stay exactly as
# it is, and the journal must keep every line written before the kill.
ipvsadm -L -n
kill -KILL "$(cat $W/master.pid)"
wait_until 10 '! kill -0 "$(cat $W/master.pid)" 2>/dev/null' "the master dies on SIGKILL"
echo "-- after kill -9"
ipvsadm -L -n
echo "== journal =="
cat $W/master.journal
echo
echo "== master log =="
cat $W/master.log
echo "== done =="
