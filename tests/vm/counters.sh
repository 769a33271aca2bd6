#!/bin/sh
# Real LVS traffic through NAT, DR and TUN services, for tests/ipvs_counters.rs.
# Runs inside tests/vm/lvsim-vm (root, Debian's 6.1 kernel, LVSIM_VM_MODULES=ipip), in a
# directory holding `traffic` (the test binary, which doubles as client and server).
# Prints `ipvsadm -L -n --stats --exact` of the director between BEGIN/END lines.
#
#   ns cl 10.9.0.2 ---- 10.9.0.1  root ns: router, bridge br0 10.0.0.1/24
#                                   | br0
#        +--------------+-----------+-----------+
#     ns dir 10.0.0.2  d1 .11, d2 .12      t1 .21, t2 .22
#     VIPs on lo       VIP .101 on lo      VIP .102 on tunl0
#     IPVS             (DR real servers)   (TUN real servers)
#     brn 10.5.0.1/24 -- n1 10.5.0.11, n2 10.5.0.12 (NAT real servers, via dir)
#
# The root namespace routes the VIPs to the director; DR/TUN replies go from the real
# servers to the root router and on to the client, not through the director. Every veth
# has gso_max_segs 1, so TCP sends one segment per skb and IPVS counts wire packets.
#
# Cases (one service port each, on every VIP): PORT:REQUEST:RESPONSE:REQUESTS:CONNS.
set -eu
CASES="${COUNTER_CASES:-8000:0:0:1:10 8001:1024:1024:5:10 8002:100:102400:3:5 8003:100:1048576:2:3 8004:102400:100:2:5}"
T=$PWD/traffic
MTU=${COUNTER_MTU:-1500}

veth() { # veth NAME_HERE NS_HERE NAME_THERE NS_THERE
  ip link add "$1" mtu "$MTU" gso_max_segs 1 type veth peer name "$3" mtu "$MTU" gso_max_segs 1
  [ "$2" = - ] || ip link set "$1" netns "$2"
  [ "$4" = - ] || ip link set "$3" netns "$4"
}
in_ns() { _ns=$1; shift; ip netns exec "$_ns" "$@"; }
quiet_arp() { # a real server that holds the VIP must not answer ARP for it
  in_ns "$1" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
for ns in cl dir n1 n2 d1 d2 t1 t2; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add br0 type bridge
ip addr add 10.0.0.1/24 dev br0
ip link set br0 up

veth cl0 - eth0 cl
ip addr add 10.9.0.1/24 dev cl0
ip link set cl0 up
# Every sender (the client, the real servers) paces its TCP flows at RATE with the fq
# qdisc (LVSIM_VM_MODULES=sch_fq): segments reach each receiver spaced out, so that it
# reads each before the next and ACKs as Linux does when it keeps up. Without pacing,
# under TCG, the ACK count of a bulk transfer varied by +-25% from run to run (stretch
# ACKs when the receiver falls behind); shaping with tbf instead queued the sender's
# window in the shaper, and the receive-window-limited sender drew window-update ACKs
# (+3 to +11%).
RATE=${COUNTER_RATE:-16mbit}
ip -n cl addr add 10.9.0.2/24 dev eth0
ip -n cl link set eth0 up
ip -n cl route add default via 10.9.0.1
tc -n cl qdisc add dev eth0 root fq maxrate "$RATE"

lan() { # lan NS ADDR: a namespace on br0
  veth "lan-$1" - eth0 "$1"
  ip link set "lan-$1" master br0 up
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" route add default via 10.0.0.1
}
lan dir 10.0.0.2
for v in 100 101 102; do
  ip -n dir addr add 10.0.0.$v/32 dev lo
  ip route add 10.0.0.$v/32 via 10.0.0.2
done
in_ns dir sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0
ip -n dir link add brn type bridge
ip -n dir addr add 10.5.0.1/24 dev brn
ip -n dir link set brn up
i=11
for ns in n1 n2; do
  veth "nat-$ns" dir eth0 "$ns"
  ip -n dir link set "nat-$ns" master brn up
  ip -n $ns addr add 10.5.0.$i/24 dev eth0
  ip -n $ns link set eth0 up
  ip -n $ns route add default via 10.5.0.1
  i=$((i + 1))
done
lan d1 10.0.0.11
lan d2 10.0.0.12
lan t1 10.0.0.21
lan t2 10.0.0.22
for ns in n1 n2 d1 d2 t1 t2; do tc -n $ns qdisc add dev eth0 root fq maxrate "$RATE"; done
for ns in d1 d2; do quiet_arp $ns; ip -n $ns addr add 10.0.0.101/32 dev lo; done
for ns in t1 t2; do
  quiet_arp $ns
  ip -n $ns link set tunl0 up
  ip -n $ns addr add 10.0.0.102/32 dev tunl0
  in_ns $ns sysctl -qw net.ipv4.conf.tunl0.rp_filter=0
done

specs=""
for c in $CASES; do specs="$specs ${c%:*:*}"; done
for ns in n1 n2 d1 d2 t1 t2; do
  in_ns $ns "$T" serve "/tmp/ready-$ns" $specs 7999:102400:100 &
done
for ns in n1 n2 d1 d2 t1 t2; do
  while [ ! -e "/tmp/ready-$ns" ]; do sleep 0.05; done
done

ipvs() { in_ns dir ipvsadm "$@"; }
# The rules in one ipvsadm -R (a process start costs a lot under TCG).
rules=""
for c in $CASES; do
  port=${c%%:*}
  rules="$rules
-A -t 10.0.0.100:$port -s rr
-a -t 10.0.0.100:$port -r 10.5.0.11:$port -m
-a -t 10.0.0.100:$port -r 10.5.0.12:$port -m
-A -t 10.0.0.101:$port -s rr
-a -t 10.0.0.101:$port -r 10.0.0.11:$port -g
-a -t 10.0.0.101:$port -r 10.0.0.12:$port -g
-A -t 10.0.0.102:$port -s rr
-a -t 10.0.0.102:$port -r 10.0.0.21:$port -i
-a -t 10.0.0.102:$port -r 10.0.0.22:$port -i"
done
echo "$rules" | grep . | ipvs -R

# The estimator folds the per-CPU counters into what ipvsadm reads (and what -Z zeroes)
# every 2 s: wait until two readings agree after a fold.
settle() {
  prev=""
  n=0
  while :; do
    sleep 2.1
    cur=$(ipvs -L -n --stats --exact)
    [ "$cur" = "$prev" ] && break
    prev=$cur
    n=$((n + 1))
    [ $n -lt 30 ] || { echo "counters never settled"; exit 1; }
  done
}

# Path-MTU discovery through the tunnel: the director refuses a full-size segment with
# "fragmentation needed" (the outer header does not fit) and the client lowers its MSS
# for the VIP. One warm-up upload to a service of its own learns it; the service goes
# and the counters are zeroed (once folded in) before the measured traffic.
ipvs -A -t 10.0.0.102:7999 -s rr
ipvs -a -t 10.0.0.102:7999 -r 10.0.0.21:7999 -i
in_ns cl "$T" client 10.0.0.102 7999 102400 100 1 1
settle
ipvs -D -t 10.0.0.102:7999
ipvs -Z

for vip in 10.0.0.100 10.0.0.101 10.0.0.102; do
  for c in $CASES; do
    set -- $(echo "$c" | tr : ' ')
    in_ns cl "$T" client $vip "$1" "$2" "$3" "$4" "$5"
  done
done

settle
echo "BEGIN ipvsadm -L -n --stats --exact"
echo "$cur"
echo "END"
