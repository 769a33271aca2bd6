#!/bin/sh
# Runs inside the lvsim VM (tests/vm/lvsim-vm) as root, against the real kernel IPVS:
# feedbackd-master with the netlink backend and its console on https://127.0.0.1:8443, one
# feedbackd-agent on the director itself reporting for the real server 10.0.0.5:80 of the
# virtual service 10.0.0.1:80 (no traffic is needed: the test is about the table). curl,
# as a browser would, logs in, reads the CSRF token from the server's page and POSTs a
# drain; the kernel's weight goes to 0 and stays there while the agent's load changes;
# maintenance takes the server out of the table, and a return gives it back to the law.
#
# Output: `== phase ==` headers, `ipvsadm -L -n` listings, `HTTP what code` lines, the audit
# log and the master's log for the Rust test (tests/vm_console.rs) to check; `FAIL why` and
# exit 1 on a timeout. Needs MASTER and AGENT (absolute paths of the binaries).
set -eu
W=/tmp/fbconsole
B=https://127.0.0.1:8443
RS=tcp:10.0.0.1:80/10.0.0.5:80
PW='a console password for the VM'
mkdir -p $W
fail() { echo "FAIL $*"; echo "--- master log"; cat $W/master.log; echo "--- agent log"; cat $W/agent.log; exit 1; }
. "$(dirname "$0")/lib.sh"
# post ACTION: the server action through the console with the session and its CSRF token.
post() {
  curl -k -s -o $W/post.html -w '%{http_code}' -b $W/jar -H "Origin: $B" \
    --data-urlencode "rs=$RS" -d "action=$1" --data-urlencode "csrf=$csrf" $B/server/action
}

ipvsadm -A -t 10.0.0.1:80 -s wrr
"$MASTER" add-agent rs1 --address 10.0.0.5 --service tcp:80 --keys-file $W/keys \
  --agent-key-out $W/rs1.key > /dev/null || fail "add-agent"
"$MASTER" cert --cert $W/console.crt --key $W/console.key --name 127.0.0.1 > /dev/null || fail "cert"
printf '%s\n' "$PW" | "$MASTER" passwd admin --role admin --users-file $W/users --password-stdin \
  > /dev/null || fail "passwd"
"$MASTER" --listen 127.0.0.1:7878 --status-listen 127.0.0.1:7879 --keys-file $W/keys \
  --max-weight 10 --smoothing 1 --max-step 0 --dead-band 0 --slow-start 0s --rescan-interval 1s \
  --console 127.0.0.1:8443 --console-cert $W/console.crt --console-key $W/console.key \
  --console-users $W/users --console-audit $W/audit.log --state-file $W/console.state > $W/master.log 2>&1 &
echo 0.9 > $W/load
cat > $W/agent.conf <<CONF
director = 127.0.0.1:7878
agent_id = rs1
key_file = $W/rs1.key
interval = 200ms
service = http
        protocol = TCP
        port = 80
        module = file path=$W/load scale=1
        forwarding = NAT
        address = 10.0.0.5
CONF
"$AGENT" -c $W/agent.conf > $W/agent.log 2>&1 &

echo "== before =="
wait_until 60 '[ "$(weight_of 10.0.0.5)" = 9 ]' "the agent's server added with weight 9"
ipvsadm -L -n
wait_until 30 'curl -k -s -o /dev/null $B/login' "the console answers"
echo "HTTP nosession $(curl -k -s -o /dev/null -w '%{http_code}' -d "rs=$RS" -d action=drain $B/server/action)"
echo "HTTP login $(curl -k -s -o /dev/null -w '%{http_code}' -c $W/jar --data-urlencode user=admin \
  --data-urlencode "password=$PW" $B/login)"
curl -k -s -b $W/jar "$B/server?rs=tcp%3A10.0.0.1%3A80%2F10.0.0.5%3A80" > $W/server.html
csrf=$(grep -o '<input[^>]*name="csrf"[^>]*>' $W/server.html | head -1 | sed 's/.*value="\([^"]*\)".*/\1/')
[ -n "$csrf" ] || fail "no csrf field on the server's page: $(cat $W/server.html)"
echo "HTTP drain $(post drain)"
wait_until 30 '[ "$(weight_of 10.0.0.5)" = 0 ]' "the drain reaches the kernel (weight 0)"
echo "== drained =="
ipvsadm -L -n
cat /proc/net/ip_vs
# The agent reports half its capacity: the console shows it, the kernel keeps the drain.
echo 0.5 > $W/load
wait_until 30 'curl -k -s -b $W/jar $B/ | grep -q "50.0%"' "the console shows the agent's capacity 50%"
echo "== drained, agent at 50% =="
ipvsadm -L -n
echo "HTTP maintenance $(post maintenance)"
wait_until 30 '[ -z "$(weight_of 10.0.0.5)" ]' "maintenance takes the server out of the kernel's table"
echo "== maintenance =="
ipvsadm -L -n
echo "HTTP return $(post return)"
wait_until 30 '[ -n "$(weight_of 10.0.0.5)" ] && [ "$(weight_of 10.0.0.5)" != 0 ]' \
  "the return puts the server back in the kernel's table with the law's weight"
echo "== returned =="
ipvsadm -L -n
echo "== audit =="
cat $W/audit.log
echo "== master log =="
cat $W/master.log
echo "== done =="
