# Shell helpers shared by the VM scripts (sourced after each defines `fail`).

# wait_until SECONDS 'shell condition' what
wait_until() {
  n=$(($1 * 10))
  while [ $n -gt 0 ]; do
    if eval "$2"; then return 0; fi
    sleep 0.1; n=$((n - 1))
  done
  fail "$3 (not within $1 s)"
}
# weight_of RIP: the weight of RIP:80 in the kernel's table.
weight_of() { ipvsadm -L -n | awk -v a="$1:80" '$2 == a { print $4 }'; }
